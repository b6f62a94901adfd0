// Page texts: Vietnamese by default, English on request (?lang=en or the switch).
export const TEXTS = {
  vi: {
    title: 'Đo tốc độ Internet',
    subtitle: 'Kiểm tra tốc độ kết nối của bạn tới máy chủ đo quốc gia',
    start: 'Bắt đầu đo',
    again: 'Đo lại',
    network: 'Loại mạng',
    unstated: 'Không rõ (để máy chủ xác định)',
    fixed: 'Cố định (cáp quang, ADSL)',
    mobile: 'Di động (3G/4G)',
    '5g': '5G',
    useLocation: 'Dùng vị trí của tôi (để xác định xã/phường)',
    latency: 'Đang đo độ trễ…',
    download: 'Tải xuống',
    upload: 'Tải lên',
    idleLatency: 'Độ trễ (không tải)',
    jitter: 'Độ dao động (jitter)',
    loadedDown: 'Độ trễ khi tải xuống',
    loadedUp: 'Độ trễ khi tải lên',
    provider: 'Nhà mạng',
    place: 'Địa điểm',
    unknown: 'không xác định',
    share: 'Liên kết kết quả',
    failed: 'Phép đo không thành công',
    locating: 'Đang lấy vị trí…',
    noLocation: 'Không lấy được vị trí; dùng địa chỉ IP.',
    method: 'Đo nhiều luồng song song, bỏ giai đoạn khởi động TCP; tốc độ tải lên do máy chủ đếm.',
  },
  en: {
    title: 'Internet speed test',
    subtitle: 'Test your connection to the national measurement server',
    start: 'Start test',
    again: 'Test again',
    network: 'Network type',
    unstated: "Don't know (let the server decide)",
    fixed: 'Fixed (fibre, DSL)',
    mobile: 'Mobile (3G/4G)',
    '5g': '5G',
    useLocation: 'Use my location (for commune-level placement)',
    latency: 'Measuring latency…',
    download: 'Download',
    upload: 'Upload',
    idleLatency: 'Latency (idle)',
    jitter: 'Jitter',
    loadedDown: 'Latency while downloading',
    loadedUp: 'Latency while uploading',
    provider: 'Provider',
    place: 'Place',
    unknown: 'unknown',
    share: 'Result link',
    failed: 'The test failed',
    locating: 'Getting your location…',
    noLocation: 'No location available; using the IP address.',
    method: 'Several parallel streams, TCP ramp-up excluded; upload is what the server counted.',
  },
};

export function translate(lang) {
  const texts = TEXTS[lang] || TEXTS.vi;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-t]')) {
    const key = el.getAttribute('data-t');
    if (key in texts) el.textContent = texts[key];
  }
  return texts;
}
