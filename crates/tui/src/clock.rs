//! Time as the interface uses it: seconds since the Unix epoch, handed in by the event loop (so
//! that state updates stay pure and tests pick their own "now"), and formatted in UTC.

use docent_core::date::civil_from_days;

/// Seconds since 1970-01-01 UTC.
pub type Timestamp = u64;

/// The system clock now.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parts(t: Timestamp) -> ((i64, u32, u32), u64, u64, u64) {
    let days = (t / 86_400) as i64;
    let s = t % 86_400;
    (civil_from_days(days), s / 3600, (s / 60) % 60, s % 60)
}

/// `YYYY-MM-DD`.
pub fn date(t: Timestamp) -> String {
    let ((y, m, d), ..) = parts(t);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn date_time(t: Timestamp) -> String {
    let ((y, m, d), h, min, _) = parts(t);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
}

/// `YYYYMMDD-HHMMSS`, for names of files.
pub fn compact(t: Timestamp) -> String {
    let ((y, m, d), h, min, s) = parts(t);
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        // 2025-11-22 13:05:09 UTC
        let t = 20_414 * 86_400 + 13 * 3600 + 5 * 60 + 9;
        assert_eq!(date(t), "2025-11-22");
        assert_eq!(date_time(t), "2025-11-22 13:05");
        assert_eq!(compact(t), "20251122-130509");
        assert_eq!(date(0), "1970-01-01");
    }
}
