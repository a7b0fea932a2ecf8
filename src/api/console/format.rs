//! Plain-text renderings of times for the console (values only: escaping is the
//! template's job).

use time::OffsetDateTime;

/// `2026-12-03 06:14 UTC`.
pub fn when(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(0))
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// An RFC 3339 time from a JSON view, as [`when`] writes it (unparsable text unchanged).
pub fn when_rfc3339(text: &str) -> String {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
        .map_or_else(|| text.to_string(), when)
}

/// `Thu 03`: the chart's day labels.
pub fn day_label(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(0))
        .map(|t| format!("{} {:02}", &t.weekday().to_string()[..3], t.day()))
        .unwrap_or_default()
}

/// `2026-12-03`: machine-readable day (data attributes).
pub fn date(unix: u64) -> String {
    when(unix).get(..10).unwrap_or_default().to_string()
}

/// A duration in its largest whole unit: `42 s`, `7 min`, `3 h`, `12 d`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc_and_ages_in_their_largest_unit() {
        // 2026-12-03T06:14:00Z, a Thursday.
        let t = 1_796_278_440;
        assert_eq!(when(t), "2026-12-03 06:14 UTC");
        assert_eq!(date(t), "2026-12-03");
        assert_eq!(when_rfc3339("2026-12-03T06:14:59Z"), "2026-12-03 06:14 UTC");
        assert_eq!(day_label(t), "Thu 03");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(600), "10 min");
        assert_eq!(age(3 * 3600), "3 h");
        assert_eq!(age(10 * 86_400), "10 d");
    }
}
