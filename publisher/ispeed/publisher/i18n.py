"""The published site's words in Vietnamese (default) and English, and number formatting per language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ispeed.core import ratings
from ispeed.publisher.words_report import REPORT_TEXT

LANGUAGES = ("vi", "en")

# key -> (Vietnamese, English); `{name}` fields are filled by `translator(lang)(key, name=...)`.
TEXT: dict[str, tuple[str, str]] = {
    "site_name": ("Tốc độ Internet Việt Nam", "Vietnam Internet speed"),
    "site_tagline": (
        "Số liệu đo tốc độ Internet cố định, di động và 5G, công bố hằng tháng",
        "Fixed, mobile and 5G Internet speed measurements, published monthly",
    ),
    "nav_home": ("Tổng quan", "Overview"),
    "nav_rankings": ("Xếp hạng", "Rankings"),
    "nav_provinces": ("Tỉnh, thành phố", "Provinces"),
    "nav_isps": ("Nhà mạng", "ISPs"),
    "nav_map": ("Bản đồ", "Map"),
    "nav_methodology": ("Phương pháp", "Methodology"),
    "nav_servers": ("Máy chủ đo", "Test servers"),
    "servers_title": ("Tình trạng máy chủ đo", "Test server health"),
    "servers_intro": (
        "Mỗi kết quả ghi máy chủ đã đo nó. Máy chủ quá tải (tải ≥ {share} % công suất trong "
        "một phút) có thể làm kết quả thấp hơn thực tế; các phút đó được liệt kê để có thể "
        "loại trừ.",
        "Every result records the server that measured it. A saturated server (load ≥ "
        "{share} % of its capacity within a minute) can under-report; those minutes are "
        "listed so their tests can be excluded.",
    ),
    "servers_none": ("Chưa có kết quả nào trong tháng.", "No results this month."),
    "col_server": ("Máy chủ", "Server"),
    "col_valid": ("Hợp lệ", "Valid"),
    "col_invalid_share": ("Không hợp lệ", "Invalid"),
    "col_rtt": ("RTT TCP trung vị (ms)", "Median TCP RTT (ms)"),
    "col_retrans": ("Tỷ lệ truyền lại", "Retransmissions"),
    "col_peak_tests": ("Đo đồng thời cao nhất / phút", "Peak tests per minute"),
    "col_peak_load": ("Tải cao nhất (Gbit/s)", "Peak load (Gbit/s)"),
    "col_saturated": ("Phút quá tải", "Saturated minutes"),
    "nav_downloads": ("Tải dữ liệu", "Downloads"),
    "nav_archive": ("Lưu trữ", "Archive"),
    "nav_test": ("Đo tốc độ", "Run a test"),
    "skip": ("Chuyển đến nội dung", "Skip to content"),
    "other_lang": ("English", "Tiếng Việt"),
    "month": ("Tháng {month}", "Month {month}"),
    "meta_line": (
        "Tháng {month} · Phương pháp phiên bản {version} · Xây dựng lúc {built}",
        "Month {month} · Methodology version {version} · Built {built}",
    ),
    "provisional": (
        "Số liệu tạm tính: tháng {month} chưa kết thúc (đến ngày {until}). Số liệu sẽ thay đổi.",
        "Provisional: month {month} is not over (data to {until}). Figures will change.",
    ),
    "final": ("Số liệu chính thức", "Final figures"),
    "status_final": ("chính thức", "final"),
    "status_provisional": ("tạm tính", "provisional"),
    "simulated_note": (
        "Bản dựng này có tính cả kết quả mô phỏng (dữ liệu trình diễn, không phải đo thật).",
        "This build counts simulated results (demonstration data, not real measurements).",
    ),
    "network_type": ("Loại mạng", "Network type"),
    "fixed": ("Cố định", "Fixed"),
    "mobile": ("Di động", "Mobile"),
    "5g": ("5G", "5G"),
    "download": ("Tải xuống", "Download"),
    "upload": ("Tải lên", "Upload"),
    "latency": ("Độ trễ", "Latency"),
    "jitter": ("Độ dao động", "Jitter"),
    "median": ("trung vị", "median"),
    "ci": ("KTC 95%", "95% CI"),
    "rank": ("Hạng", "Rank"),
    "tie": ("đồng hạng", "tied"),
    "tests": ("Lượt đo", "Tests"),
    "samples": ("Mẫu", "Samples"),
    "devices": ("Thiết bị", "Devices"),
    "provider": ("Nhà mạng", "ISP"),
    "province": ("Tỉnh, thành phố", "Province"),
    "commune": ("Xã, phường, đặc khu", "Commune"),
    "all_isps": ("Mọi nhà mạng", "All ISPs"),
    "national": ("Toàn quốc", "National"),
    "insufficient": ("Không đủ dữ liệu (< {n} mẫu)", "Insufficient data (< {n} samples)"),
    "no_data": ("Chưa có số liệu", "No data yet"),
    "not_found_text": (
        "Trang bạn tìm không có trên trang này. Xem số liệu mới nhất hoặc các tháng đã công bố.",
        "The page you asked for is not on this site. See the latest figures or the published months.",
    ),
    "change_vs": ("so với tháng {month}", "vs {month}"),
    "no_change": ("chưa có tháng trước để so sánh", "no previous month to compare"),
    "trend_title": ("Tốc độ tải xuống trung vị toàn quốc, 12 tháng", "National median download, 12 months"),
    "trend_alt": (
        "Biểu đồ đường: tốc độ tải xuống trung vị toàn quốc theo tháng, cho cố định, di động và 5G.",
        "Line chart: national median download by month for fixed, mobile and 5G.",
    ),
    "isp_trend_alt": (
        "Biểu đồ đường: tốc độ tải xuống trung vị toàn quốc của {isp} theo tháng.",
        "Line chart: {isp}'s national median download by month.",
    ),
    "bars_alt": (
        "Biểu đồ thanh: tốc độ tải xuống trung vị của các nhà mạng ({nt}), với khoảng tin cậy 95%.",
        "Bar chart: median download of the ISPs ({nt}) with 95% confidence intervals.",
    ),
    "home_national": ("Tốc độ trung vị toàn quốc", "National medians"),
    "home_provinces": ("Các tỉnh, thành phố", "Provinces and cities"),
    "home_isps": ("Các nhà mạng", "ISPs"),
    "rankings_title": ("Xếp hạng tháng {month}", "Rankings, {month}"),
    "rank_isps": ("Nhà mạng toàn quốc — {nt}", "ISPs nationally — {nt}"),
    "rank_provinces": ("34 tỉnh, thành phố — {nt}", "The 34 provinces — {nt}"),
    "rank_note": (
        "Hạng = 1 + số đơn vị có cận dưới KTC cao hơn cận trên KTC của đơn vị này; các đơn vị không "
        "phân biệt được thì đồng hạng (=).",
        "Rank = 1 + the number of cells whose CI low is above this cell's CI high; cells that "
        "cannot be told apart share a rank (=).",
    ),
    "province_title": ("{name}", "{name}"),
    "province_isps": ("Nhà mạng tại {name} — {nt}", "ISPs in {name} — {nt}"),
    "province_communes": ("Xã, phường tại {name} — {nt}", "Communes of {name} — {nt}"),
    "communes_count": ("{n} xã, phường, đặc khu", "{n} communes and wards"),
    "sort_hint": ("Bấm tiêu đề cột để sắp xếp.", "Select a column header to sort."),
    "isp_title": ("{name}", "{name}"),
    "isp_national": ("{name} toàn quốc", "{name} nationally"),
    "isp_provinces": ("{name} theo tỉnh — {nt}", "{name} by province — {nt}"),
    "isp_bundle": ("Gói dữ liệu công khai của {name} (CSV, JSON)", "{name}'s public data bundle (CSV, JSON)"),
    "map_title": ("Bản đồ tốc độ tháng {month}", "Speed map, {month}"),
    "map_communes": ("Xã, phường — tải xuống trung vị ({nt})", "Communes — median download ({nt})"),
    "map_alt": (
        "Bản đồ chấm: mỗi chấm là tâm một xã, phường, tô màu theo tốc độ tải xuống trung vị ({nt}); "
        "chấm xám: không đủ dữ liệu.",
        "Dot map: each dot is a commune's centroid, coloured by median download ({nt}); grey dots: insufficient data.",
    ),
    "tiles_title": ("Tỉnh, thành phố — tải xuống trung vị ({nt})", "Provinces — median download ({nt})"),
    "tiles_alt": (
        "Lưới ô: mỗi ô là một tỉnh, thành phố, xếp gần đúng theo vị trí địa lý, tô màu theo tốc độ "
        "tải xuống trung vị ({nt}).",
        "Tile grid: one tile per province, placed roughly by geography, coloured by median download ({nt}).",
    ),
    "legend": ("Chú giải (Mbps)", "Legend (Mbps)"),
    "legend_none": ("không đủ dữ liệu", "insufficient data"),
    "methodology_title": ("Phương pháp phiên bản {version}", "Methodology version {version}"),
    "evidence_title": ("Bằng chứng cho mỗi nhãn", "The evidence behind every label"),
    "downloads_title": ("Tải dữ liệu tháng {month}", "Downloads, {month}"),
    "downloads_intro": (
        "Mọi bảng trên trang đều có bản CSV và JSON. Dữ liệu mở từng lượt đo không chứa địa chỉ IP; "
        "vị trí được làm tròn, mã thiết bị được băm.",
        "Every table of the site as CSV and JSON. The per-test open data holds no IP "
        "addresses; locations are rounded and device ids hashed.",
    ),
    "dl_month_files": ("Tệp của tháng", "The month's files"),
    "dl_opendata": ("Dữ liệu mở từng lượt đo ({n} lượt, CSV nén gzip)", "Per-test open data ({n} tests, gzip CSV)"),
    "dl_isps": ("Gói dữ liệu theo nhà mạng", "Per-ISP bundles"),
    "dl_tables": ("Các bảng", "Tables"),
    "archive_title": ("Các tháng đã công bố", "Published months"),
    "archive_built": ("xây dựng lúc {built}", "built {built}"),
    "table_download": ("Tải bảng", "Download table"),
    "suppressed": ("ẩn", "suppressed"),
    "not_found": ("Không tìm thấy trang", "Page not found"),
    "built_by": ("Xây dựng bởi ispeed — mã nguồn mở.", "Built by ispeed — open source."),
    "mbps": ("Mbps", "Mbps"),
    "ms": ("ms", "ms"),
    "latest": ("Tháng mới nhất", "Latest month"),
    "see_month": ("Xem tháng {month}", "See {month}"),
    "month_to_date": ("Tháng {month} (tạm tính)", "{month} (provisional)"),
}

METHOD_TEXT: dict[str, tuple[str, str]] = {
    "m1": (
        "Tháng là tháng dương lịch theo giờ Việt Nam (UTC+7).",
        "A month is the calendar month in Vietnam local time (UTC+7).",
    ),
    "m2": (
        "Chỉ tính lượt đo hợp lệ: hoàn tất, tải xuống và tải lên lớn hơn 0, khớp với bộ đếm của máy chủ, không "
        "bị đánh dấu không hợp lệ; kết quả mô phỏng chỉ được tính khi được bật rõ ràng.",
        "Valid tests only: finished, download and upload above 0, consistent with the server's own "
        "counters, not flagged invalid; simulated results count only when explicitly included.",
    ),
    "m3": (
        "Một mẫu là một thiết bị-ngày: trung vị các lượt đo hợp lệ của thiết bị đó trong ngày (giờ Việt Nam), "
        "trong ô thống kê. Thiết bị là mã thiết bị do máy chủ cấp (đã băm), hoặc IP đã băm khi không có. "
        "Người đo nhiều lần không lấn át người khác.",
        "A sample is one device-day: the median of that device's valid tests that local day, within the "
        "cell. The device is the hashed server-issued device id, or the hashed IP when absent. Heavy testers do not "
        "outweigh others.",
    ),
    "m0": (
        "Mọi con số được công bố là số đo của chính máy chủ: tải xuống theo số byte mà TCP của máy khách đã "
        "xác nhận (tcpi_bytes_acked), tải lên theo số byte máy chủ nhận được, lấy mẫu mỗi 100 ms trong khoảng "
        "thời gian do mã đo và đồng hồ máy chủ xác định. Số đo của máy khách chỉ được lưu để đối chiếu: lệch "
        "quá 10% thì kết quả bị đánh dấu và không được công bố. Lượt đo mà máy chủ thấy chưa đến nửa thời "
        "gian mỗi pha hoặc dưới 64 KiB bị từ chối.",
        "Every published figure is the server's own measurement: download from the bytes the client's "
        "TCP acknowledged (tcpi_bytes_acked), upload from the bytes the server received, sampled every "
        "100 ms over the phase that the test token and the server's clock define. The client's own "
        "figures are kept for audit only: more than 10 % apart, the result is flagged and never "
        "published. A test the server saw for less than half of a phase, or under 64 KiB, is refused.",
    ),
    "e1": (
        "Địa điểm: GPS (kèm độ chính xác) khi có và không mâu thuẫn với vị trí theo IP; nếu không thì theo "
        "IP (chỉ cấp tỉnh). Với đường truyền cố định mà cơ sở dữ liệu IP định vị trong bán kính nhỏ (≤ 100 km), "
        "GPS cách vị trí đó quá bán kính + 50 km thì không được dùng: kết quả bị đánh dấu location_conflict và "
        "xếp theo IP. Địa chỉ di động thường định vị về cổng của nhà mạng nên không thể bác bỏ GPS.",
        "Place: GPS (with its accuracy) when given and not contradicted by the IP location, else the IP "
        "(province only). For a fixed line that the IP database locates within a small radius (≤ 100 km), "
        "GPS farther than that radius + 50 km is not used: the result is flagged location_conflict and "
        "placed by IP. Mobile addresses locate to the carrier's gateway, so they cannot contradict GPS.",
    ),
    "e2": (
        "Loại mạng: do người dùng khai (declared), do hệ điều hành hoặc modem của thiết bị báo (device), "
        "hoặc theo loại kết nối của địa chỉ IP (ip: Cellular là di động, Cable/DSL là cố định); không có gì thì "
        "tính là cố định (none). Loại khai báo mâu thuẫn với loại kết nối của IP (khai cố định từ địa chỉ "
        "Cellular, khai di động/5G từ địa chỉ Cable/DSL) bị đánh dấu network_type_conflict và không xếp hạng.",
        "Network type: declared by the user, reported by the device's OS or modem (device), or the IP "
        "address's connection type (ip: Cellular is mobile, Cable/DSL fixed); with none of these the result "
        "counts as fixed (none). A declared type the IP's connection type contradicts (fixed from a Cellular "
        "address, mobile/5G from a Cable/DSL one) is flagged network_type_conflict and never ranked.",
    ),
    "e3": (
        "Thiết bị: mã thiết bị do máy chủ cấp và ký (issued); mỗi mạng /24 chỉ được cấp một số mã mỗi ngày "
        "(nhiều hơn cho mạng di động, vì nhiều điện thoại dùng chung địa chỉ qua NAT của nhà mạng). Mã tự đặt "
        "hoặc không hợp lệ không được tính: lượt đo được tính theo IP đã băm.",
        "Device: an id this platform's servers issued and signed (issued); each /24 network gets a few new "
        "ids a day (more for mobile networks, where many phones share addresses behind the carrier's NAT). "
        "A self-chosen or invalid id does not count: the test counts under its hashed IP.",
    ),
    "e4": (
        "Mỗi ô được công bố cho biết tỷ lệ mẫu theo từng loại bằng chứng (stats.csv: place_gps_share, "
        "place_ip_share, network_type_ip_share, network_type_device_share, network_type_declared_share, "
        "device_issued_share). Một mẫu dựa trên bằng chứng yếu nhất trong các lượt đo của nó.",
        "Every published cell reports the share of its samples resting on each kind of evidence (stats.csv: "
        "place_gps_share, place_ip_share, network_type_ip_share, network_type_device_share, "
        "network_type_declared_share, device_issued_share). A sample rests on the weakest evidence among "
        "its tests.",
    ),
    "m4": (
        "Số liệu của ô = trung vị các mẫu (tải xuống, tải lên, độ trễ, độ dao động). Trung vị của số phần tử "
        "chẵn là trung bình hai giá trị giữa.",
        "Cell figure = median of its samples (download, upload, latency, jitter). The median of an even "
        "count is the mean of the two middle values.",
    ),
    "m5": (
        "Chỉ công bố ô có ít nhất {min_samples} mẫu; ô khác chỉ hiện số lượt đo và số mẫu.",
        "A cell is published only with at least {min_samples} samples; others show counts only.",
    ),
    "m6": (
        "Khoảng tin cậy {ci}% của trung vị tải xuống: phi tham số, từ thống kê thứ tự theo phân phối nhị thức: "
        "k = binom.ppf({tail}, n, 0.5); cận dưới = giá trị nhỏ thứ k, cận trên = giá trị nhỏ thứ n − k + 1.",
        "{ci}% confidence interval of the download median: distribution-free, from binomial order "
        "statistics: k = binom.ppf({tail}, n, 0.5); low = k-th smallest, high = (n − k + 1)-th smallest.",
    ),
    "m7": (
        "Hạng (chỉ ô được công bố): nhà mạng so với các nhà mạng khác cùng loại mạng và địa bàn; tỉnh so với "
        "mọi tỉnh; xã so với các xã cùng tỉnh. Hạng = 1 + số ô trong nhóm có cận dưới KTC cao hơn cận trên "
        "KTC của ô này: các ô không phân biệt được thì đồng hạng.",
        "Rank (published cells only): ISPs against the other ISPs of the same network type and place; "
        "provinces against all provinces; communes against the communes of the same province. Rank = 1 + "
        "the number of cells in the group whose CI low is above this cell's CI high: cells that cannot be "
        "told apart share a rank.",
    ),
    "m8": (
        "Ai cũng có thể tính lại mọi ô từ dữ liệu mở của tháng.",
        "Anyone can recompute every cell from the month's open-data export.",
    ),
    # the test page's ratings and comparison (core/ratings.py, server/compare.py)
    "ratings_title": ("Đánh giá theo nhu cầu sử dụng", "Ratings for everyday uses"),
    "ratings_intro": (
        "Trang đo đánh giá từng kết quả cho các nhu cầu thường ngày. Mỗi nhu cầu có các tiêu chí; mỗi tiêu "
        "chí là Tốt từ ngưỡng thứ nhất, Tạm được từ ngưỡng thứ hai, còn lại là Kém. Nhu cầu nhận mức thấp "
        "nhất trong các tiêu chí đã đo (một con số yếu là đủ làm hỏng cuộc gọi video). Độ trễ khi có tải, "
        "mất gói và độ phản hồi lấy chiều kém hơn (tải xuống hoặc tải lên). Con số chưa đo (mất gói và "
        "độ phản hồi trước phương pháp đo v2) được ghi là chưa đo, không bao giờ đoán; kết quả mà máy chủ "
        "đã làm chậm các gói thăm dò (cờ server_delayed) không có số đo độ trễ đáng tin. Ngưỡng dựa trên "
        "khuyến nghị công bố của các dịch vụ video và gọi video, ITU-T G.114 (150 ms cho thoại tương tác) "
        "và độ phản hồi RPM = 60.000 / thời gian khứ hồi (ms) khi có tải. Tốt: đủ cho cả hộ gia đình; "
        "Tạm được: một người dùng một lúc.",
        "The test page rates each result for everyday uses. Each use has criteria; a criterion is Good "
        "from its first threshold, OK from its second, Poor otherwise. A use gets the worst grade of its "
        "measured criteria (one weak figure is enough to spoil a video call). Latency under load, packet "
        "loss and responsiveness take the worse direction (download or upload). A figure that was not "
        "measured (packet loss and responsiveness before measurement method v2) is shown as not measured, "
        "never guessed; a result whose probes the server delayed (flag server_delayed) has no trusted "
        "latency figures. The thresholds follow video and video-call services' published "
        "recommendations, ITU-T G.114 (150 ms for interactive voice) and responsiveness RPM = 60,000 / "
        "round trip (ms) under load. Good: enough for a household; OK: one person at a time.",
    ),
    "ratings_use": ("Nhu cầu", "Use"),
    "ratings_metric": ("Tiêu chí", "Criterion"),
    "ratings_good": ("Tốt", "Good"),
    "ratings_ok": ("Tạm được", "OK"),
    "ratings_compare": (
        'So sánh trên trang đo ("nhanh hơn N % số lượt đo mạng cố định tại Hà Nội trong tháng 7/2025"): '
        "tháng mới nhất có ô toàn quốc được công bố cho loại mạng đó; ô của nhà mạng tại tỉnh và ô của tỉnh "
        "(toàn quốc chỉ khi hai ô đó chưa được công bố); N là tỷ lệ mẫu (mỗi thiết bị một mẫu mỗi ngày) có "
        "tốc độ tải xuống thấp hơn, đọc từ histograms.csv của tháng (trong một khoảng của biểu đồ tần suất, "
        "nội suy theo thang logarit) và làm tròn xuống. Không có biểu đồ tần suất thì kết quả chỉ được đặt "
        "cạnh trung vị và khoảng tin cậy 95 % của ô. Ô chưa đủ mẫu thì nói rõ là chưa công bố.",
        'The test page\'s comparison ("faster than N % of fixed tests in Hà Nội in July 2025"): the newest '
        "month with a published national cell for that network type; the ISP's cell in the province and "
        "the province's cell (the national one only when neither is published); N is the share of samples "
        "(one per device and day) with a lower download, read from the month's histograms.csv "
        "(interpolated on a log scale inside a histogram bin) and rounded down. Without the histogram the "
        "result is only placed against the cell's median and 95 % CI. A cell under the threshold is said "
        "to be unpublished.",
    ),
}

# Method v2's figures (issues #21, #22): table columns, the distribution line, the methodology page.
FIGURES_TEXT: dict[str, tuple[str, str]] = {
    "col_peak": ("Tải xuống {first}:00–{last}:59 (Mbps)", "Download {first}:00–{last}:59 (Mbps)"),
    "col_peak_title": (
        "Trung vị tải xuống trong giờ cao điểm {first}:00–{last}:59 (giờ Việt Nam)",
        "Median download in the peak hours {first}:00–{last}:59 (Vietnam time)",
    ),
    "col_loss": ("Mất gói ↓/↑ (%)", "Loss ↓/↑ (%)"),
    "col_loss_title": (
        "Trung vị tỷ lệ mất gói UDP chiều xuống / chiều lên, khi mạng rảnh",
        "Median UDP packet loss, download / upload direction, idle line",
    ),
    "col_rpm": ("RPM ↓/↑", "RPM ↓/↑"),
    "col_rpm_title": (
        "Trung vị độ phản hồi (số lượt khứ hồi mỗi phút) khi tải xuống / tải lên",
        "Median responsiveness (round trips per minute) while downloading / uploading",
    ),
    "col_ipv6": ("IPv6", "IPv6"),
    "col_ipv6_title": (
        "Tỷ lệ mẫu đo qua IPv6, trong các mẫu biết phiên bản IP",
        "Share of samples measured over IPv6, among those with a known IP version",
    ),
    "figures_line": (
        "Trung bình {mean} Mbps · phân vị 10–90: {p10}–{p90} Mbps · mẫu ≥ 100 Mbps: {s100} · "
        "≥ 1 Gbps: {s1000} · giờ cao điểm: {peak} Mbps ({peak_n} mẫu)",
        "Mean {mean} Mbps · 10th–90th percentile: {p10}–{p90} Mbps · samples ≥ 100 Mbps: {s100} · "
        "≥ 1 Gbps: {s1000} · peak hours: {peak} Mbps ({peak_n} samples)",
    ),
    "quality_title": ("Chất lượng và phân bố (phương pháp đo phiên bản 2)", "Quality and distribution (method 2)"),
    "q1": (
        "Mất gói UDP (chiều xuống, chiều lên; khi mạng rảnh), RTT UDP phân vị 90 và RPM (độ phản hồi: số lượt "
        "khứ hồi mỗi phút khi tải xuống, tải lên) chỉ có ở kết quả của phương pháp đo phiên bản 2; một tháng có "
        "thể gồm cả hai phiên bản. Giá trị của một mẫu là trung vị các lượt đo có số liệu đó; của ô là trung vị "
        "các mẫu có số liệu; để trống khi không mẫu nào có.",
        "UDP loss (download and upload direction, idle line), the UDP round trip's 90th percentile and RPM "
        "(responsiveness: round trips per minute while downloading, uploading) exist only for results of "
        "measurement method 2; a month may hold both versions. A sample's value is the median of its tests "
        "that have the figure; a cell's, the median of its samples that have one; empty when none has.",
    ),
    "q2": (
        "Lượt đo mà chính máy chủ làm trễ gói thăm dò quá giới hạn (cờ server_delayed) không được tính cho độ "
        "trễ, độ dao động, mất gói và RPM; tốc độ của nó vẫn được tính.",
        "A test whose probes the server itself delayed beyond its bound (flag server_delayed) counts for no "
        "latency, jitter, loss or RPM figure; its speeds still count.",
    ),
    "q3": (
        "IPv6: trong các mẫu có lượt đo biết phiên bản IP (máy chủ xác định theo kết nối), tỷ lệ mẫu mà mọi "
        "lượt đo đó chạy qua IPv6. Chỉ một lượt qua IPv4 là mẫu tính IPv4, như mẫu dựa trên bằng chứng yếu nhất.",
        "IPv6: among the samples with a test of known IP version (the server decides it from the "
        "connection), the share whose every such test ran over IPv6. One test over IPv4 makes an IPv4 "
        "sample, as a sample rests on its weakest evidence.",
    ),
    "q4": (
        "Giờ cao điểm: {first}:00–{last}:59 giờ Việt Nam (giờ bắt đầu UTC + 7). Mẫu giờ cao điểm của một "
        "thiết bị-ngày là trung vị tải xuống các lượt đo của nó trong giờ cao điểm; trung vị của các mẫu này "
        "chỉ được công bố khi ô có ít nhất {min_samples} mẫu giờ cao điểm (peak_samples).",
        "Peak hours: {first}:00–{last}:59 Vietnam time (start time UTC + 7). A device-day's peak sample is "
        "the median download of its tests in the peak hours; their median is published only when the cell "
        "has at least {min_samples} peak samples (peak_samples).",
    ),
    "q5": (
        "Tốc độ trung bình, công bố cạnh trung vị (QCVN 34 định nghĩa tốc độ trung bình là trung bình cộng): "
        "mỗi mẫu tính bằng bit/s nguyên, b = ⌊x · 10⁶ + 0,5⌋ với x tính bằng Mbps; trung bình = Σb / (n · 10⁶), "
        "làm tròn một lần. Tổng là số nguyên nên ai tính lại cũng được đúng từng bit.",
        "Mean speed, published beside the median (QCVN 34 defines average speed as the arithmetic mean): "
        "each sample in whole bit/s, b = ⌊x · 10⁶ + 0.5⌋ for x in Mbps; mean = Σb / (n · 10⁶), rounded "
        "once. The sum is an integer, so any recomputation agrees to the bit.",
    ),
    "q6": (
        "Phân vị 10 và 90 của tải xuống (nội suy tuyến tính, mặc định của numpy): các mẫu xếp tăng "
        "x₀ … xₙ₋₁; h = (n − 1) · p, j = ⌊h⌋, g = h − j; giá trị = xⱼ + (xⱼ₊₁ − xⱼ) · g (numpy tính "
        "xⱼ₊₁ − (xⱼ₊₁ − xⱼ) · (1 − g) khi g ≥ 0,5).",
        "10th and 90th percentiles of download (linear interpolation, numpy's default): samples sorted "
        "x₀ … xₙ₋₁; h = (n − 1) · p, j = ⌊h⌋, g = h − j; value = xⱼ + (xⱼ₊₁ − xⱼ) · g (numpy computes "
        "xⱼ₊₁ − (xⱼ₊₁ − xⱼ) · (1 − g) when g ≥ 0.5).",
    ),
    "q7": (
        "Tỷ lệ mẫu tải xuống ≥ 100 Mbps và ≥ {gigabit} Mbps (hạng 1 Gbps). Đường Ethernet 1 Gbps chỉ mang "
        "tối đa khoảng 941 Mbps dữ liệu TCP (khoảng 936 qua PPPoE, cách truy cập cáp quang phổ biến ở Việt "
        "Nam), nên hạng 1 Gbps dùng ngưỡng {gigabit} Mbps: vẫn tính đường 1 Gbps mất thêm vài phần trăm "
        "(VLAN, thời gian tăng tốc của lượt đo), không tính đường nào chậm hơn {gigabit} Mbps.",
        "Share of download samples ≥ 100 Mbps and ≥ {gigabit} Mbps (the 1 Gbps class). A 1 Gbps Ethernet "
        "line carries at most ~941 Mbps of TCP data (~936 over PPPoE, the usual fibre access in Vietnam), "
        "so the 1 Gbps class is counted from {gigabit} Mbps of goodput: a gigabit line that loses a few "
        "percent more (VLAN tags, the test's ramp) still counts, no line slower than {gigabit} Mbps does.",
    ),
    "q8": (
        "Mọi số liệu này tính trên cùng các mẫu thiết bị-ngày như trung vị và chỉ cho ô được công bố "
        "(stats.csv: loss_down_pct_median … share_ge_1000_mbps; cột phương pháp peak_hours, "
        "gigabit_threshold_mbps).",
        "All of these use the same device-day samples as the medians, for published cells only (stats.csv: "
        "loss_down_pct_median … share_ge_1000_mbps; methodology columns peak_hours, gigabit_threshold_mbps).",
    ),
}
TEXT.update(FIGURES_TEXT)


def percent(share: float | None, lang: str, digits: int = 0) -> str:
    """A share 0-1 as `62 %` ('–' when missing)."""
    return "–" if share is None else number(share * 100.0, lang, digits) + " %"


def rating_rules(lang: str) -> list[dict[str, Any]]:
    """The test page's rating thresholds (core/ratings.py) as methodology table rows."""
    return ratings.rules(lang)


def translator(lang: str) -> Callable[..., str]:
    """`t(key, **fields)` for one language; an unknown key raises (a template typo must fail the build)."""
    index = LANGUAGES.index(lang)

    def t(key: str, **fields: object) -> str:
        text = (TEXT.get(key) or METHOD_TEXT.get(key) or REPORT_TEXT[key])[index]
        return text.format(**fields) if fields else text

    return t


def number(value: float | int | None, lang: str, digits: int = 1) -> str:
    """`1,234.5` in English, `1.234,5` in Vietnamese; '–' for a missing value."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def signed_pct(value: float | None, lang: str) -> str:
    if value is None:
        return "–"
    return ("+" if value > 0 else "") + number(value, lang, 1) + " %"


def timestamp(ts: dt.datetime, lang: str) -> str:
    """A build time in Vietnam local time, e.g. `2025-08-02 02:00 (giờ Việt Nam)`."""
    from ispeed.core.timeutil import VN_TZ

    local = ts.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M")
    return f"{local} ({'giờ Việt Nam' if lang == 'vi' else 'Vietnam time'})"
