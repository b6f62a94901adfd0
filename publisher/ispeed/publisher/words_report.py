"""The words of the Targets page, the estimates' marks and the monthly report, in Vietnamese and English.

Looked up by `i18n.translator` after its own tables; `{name}` fields as there.
"""

from __future__ import annotations

REPORT_TEXT: dict[str, tuple[str, str]] = {
    "lang_code": ("vi", "en"),
    # the Targets page
    "nav_targets": ("Mục tiêu", "Targets"),
    "targets_title": ("Tiến độ các mục tiêu quốc gia, tháng {month}", "Progress towards the national targets, {month}"),
    "targets_intro": (
        "Các mục tiêu dưới đây lấy từ văn bản của Nhà nước (tệp mục tiêu phiên bản {version}). Với mỗi mục tiêu, "
        "trang cho biết nền tảng đo được gì, và điều gì một nền tảng đo do người dùng tự nguyện thực hiện không "
        "thể cho biết.",
        "The targets below come from the State's documents (targets file version {version}). For each, the page "
        "says what the platform measures, and what a platform of tests that people choose to run cannot show.",
    ),
    "target_goal": ("Mục tiêu", "Target"),
    "target_source": ("Nguồn", "Source"),
    "target_due": ("Thời hạn: ngưỡng", "Due: threshold"),
    "target_measure": ("Cách đo ở đây", "How it is measured here"),
    "target_can": ("Điều số liệu cho thấy", "What the figures can show"),
    "target_cannot": ("Điều số liệu không thể cho thấy", "What they cannot show"),
    "target_by": ("Thời hạn: {date} · ngưỡng: {threshold}", "Due: {date} · threshold: {threshold}"),
    "proxy_label": ("CHỈ SỐ THAY THẾ", "PROXY"),
    "proxy_note": (
        "Con số này chỉ thay thế cho điều mục tiêu đặt ra; nó không đo trực tiếp mục tiêu.",
        "This figure only stands in for what the target asks; it does not measure the target itself.",
    ),
    "target_national": ("Toàn quốc", "National"),
    "target_reached": ("đạt", "reached"),
    "target_not_reached": ("chưa đạt", "not reached"),
    "target_no_figure": ("không có số liệu", "no figure"),
    "target_not_in_stats": ("thống kê tháng này chưa có chỉ số này", "not in this month's statistics"),
    "target_insufficient": ("không đủ mẫu", "too few samples"),
    "target_progress": ("{value} — bằng {pct} ngưỡng", "{value} — {pct} of the threshold"),
    "target_chart_alt": (
        "Biểu đồ đường: {title}, toàn quốc theo tháng; đường ngang là ngưỡng {threshold}.",
        "Line chart: {title}, nationally by month; the horizontal line is the threshold, {threshold}.",
    ),
    "target_table": ("{title} theo tỉnh, thành phố", "{title} by province"),
    "target_status": ("Tình trạng", "Status"),
    "gigabit_threshold": ("ngưỡng gigabit: {mbps} Mbit/s", "gigabit threshold: {mbps} Mbit/s"),
    "threshold_line": ("ngưỡng", "threshold"),
    # the estimates' marks
    "estimate_mark": ("ước tính", "estimate"),
    "estimate_cell": (
        "≈ {value} (ước tính {grade}, {low}–{high}, {n} mẫu)",
        "≈ {value} (estimate {grade}, {low}–{high}, {n} samples)",
    ),
    "estimate_title": (
        "Ước tính thống kê từ {n} mẫu và dữ liệu của tỉnh; không phải số liệu công bố, không xếp hạng",
        "Statistical estimate from {n} samples and the province's data; not a published figure, never ranked",
    ),
    "legend_estimate": (
        "vòng tròn rỗng: ước tính (dưới {n} mẫu; hạng A/B/C theo độ tin cậy)",
        "hollow ring: estimate (under {n} samples; grade A/B/C by reliability)",
    ),
    "estimates_note": (
        "Xã, phường dưới {n} mẫu có số ước tính (ghi rõ “ước tính”) từ mẫu của chính nó, các nhà mạng của tỉnh và "
        "loại đơn vị hành chính; khoảng 90 %; hạng A, B, C theo số mẫu tương đương. Ước tính không bao giờ được "
        "xếp hạng. Cách làm và kiểm định: estimates.csv, phần Phương pháp.",
        "Communes under {n} samples show an estimate (marked “estimate”) from their own samples, their province's "
        "ISPs and their unit type; 90 % interval; grade A, B, C by equivalent samples. Estimates are never ranked. "
        "How and how well: estimates.csv and the methodology page.",
    ),
    "method_estimates": (
        "Ước tính cho xã, phường dưới ngưỡng công bố (thực nghiệm Bayes trên log trung vị): số ước tính = trung vị "
        "của chính ô, co về mức kỳ vọng từ các nhà mạng của tỉnh (theo tỷ lệ mẫu của từng nhà mạng trong ô) và loại "
        "đơn vị (phường, xã, đặc khu), theo tỷ lệ B = τ² / (τ² + v(n)). Khoảng 90 %; hạng A (≥ 100 mẫu tương đương), "
        "B (≥ 30), C. Kiểm định trên tháng mô phỏng: docs/estimates-validation.md.",
        "Estimates for communes under the publication threshold (empirical Bayes on the log-median): the cell's "
        "own median, pulled towards the level expected from its province's ISPs (weighted by the cell's samples "
        "per ISP) and its unit type (ward, commune, island zone) by B = τ² / (τ² + v(n)). 90 % interval; grade A "
        "(≥ 100 equivalent samples), B (≥ 30), C. Validated on a simulated month: docs/estimates-validation.md.",
    ),
    "dl_estimates": (
        "Ước tính cho xã, phường dưới ngưỡng (estimates.csv)",
        "Estimates of communes under the threshold (estimates.csv)",
    ),
    "dl_report": ("Báo cáo tháng (PDF)", "Monthly report (PDF)"),
    "dl_report_lang": ("Tiếng Việt", "Vietnamese"),
    "dl_report_lang_en": ("Tiếng Anh", "English"),
    # the monthly report
    "report_title": ("Báo cáo tốc độ Internet Việt Nam", "Vietnam Internet speed report"),
    "report_subtitle": ("Tháng {month}", "{month}"),
    "report_contents": ("Nội dung", "Contents"),
    "report_summary": ("Tóm tắt toàn quốc", "National summary"),
    "report_summary_intro": (
        "Trung vị, trung bình và khoảng tin cậy 95 % của trung vị tải xuống theo loại mạng; "
        "thay đổi so với tháng trước.",
        "Median, mean and 95 % confidence interval of the median download per network type; "
        "change from the month before.",
    ),
    "mean": ("trung bình", "mean"),
    "report_change": ("so với {month}", "vs {month}"),
    "report_isps": ("Xếp hạng nhà mạng", "ISP rankings"),
    "report_provinces": ("34 tỉnh, thành phố", "The 34 provinces"),
    "report_map": ("Bản đồ", "Maps"),
    "report_targets": ("Tiến độ các mục tiêu", "Progress towards the targets"),
    "report_coverage": ("Độ phủ của số liệu theo xã, phường", "How many communes the data covers"),
    "report_coverage_intro": (
        "Số xã, phường, đặc khu có số liệu công bố (≥ {n} mẫu), chỉ có ước tính (1 đến {m} mẫu), và không có mẫu nào; "
        "trên tổng số {total} đơn vị.",
        "Communes, wards and island zones with published figures (≥ {n} samples), with an estimate only (1 to {m} "
        "samples), and with no sample at all, of {total} units.",
    ),
    "cov_published": ("Công bố", "Published"),
    "cov_estimated": ("Chỉ ước tính", "Estimate only"),
    "cov_none": ("Không có mẫu", "No sample"),
    "cov_grades": ("Ước tính hạng A / B / C", "Estimates graded A / B / C"),
    "report_method": ("Tóm tắt phương pháp", "Methodology summary"),
    "report_sources": ("Nguồn dữ liệu và nguồn gốc bản dựng", "Data sources and the build's provenance"),
    "prov_method": ("Phương pháp thống kê", "Statistics methodology"),
    "prov_measure": ("Phương pháp đo", "Measurement method"),
    "prov_store": ("Kho dữ liệu", "Store"),
    "prov_built": ("Thời điểm dựng", "Built"),
    "prov_software": ("Phần mềm", "Software"),
    "prov_targets": ("Tệp mục tiêu", "Targets file"),
    "prov_estimates": ("Bộ ước tính", "Estimator"),
    "prov_tests": ("Lượt đo hợp lệ trong tháng", "Valid tests of the month"),
    "prov_simulated": ("Tính cả kết quả mô phỏng", "Simulated results counted"),
    "yes": ("có", "yes"),
    "no": ("không", "no"),
    "report_sources_text": (
        "Mọi số liệu đến từ các lượt đo do người dùng thực hiện trên nền tảng này (ứng dụng dòng lệnh, tác tử, trang "
        "đo trên trình duyệt, ứng dụng ndt7), được máy chủ đo tự đo và lưu trong kho dữ liệu dưới đây. Dữ liệu mở "
        "từng lượt đo của tháng (không có địa chỉ IP) cho phép tính lại mọi ô. Mục tiêu lấy từ các văn bản ghi ở "
        "phần Mục tiêu.",
        "Every figure comes from tests people ran on this platform (command line, agent, browser page, ndt7 "
        "clients), measured by the test servers themselves and kept in the store below. The month's per-test open "
        "data (no IP addresses) lets anyone recompute every cell. The targets come from the documents named in "
        "the Targets section.",
    ),
    "report_page": ("Trang", "Page"),
    "report_none": ("Chưa có số liệu công bố tháng này.", "No published figures this month."),
}
