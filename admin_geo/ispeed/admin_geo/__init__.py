"""Vietnam's two-level administrative units, and IP/GPS to ISP and place."""
