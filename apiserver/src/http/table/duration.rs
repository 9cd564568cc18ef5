//! Ages as kubectl prints them (apimachinery's `duration.HumanDuration`) and the RFC 3339
//! timestamps they are computed from.

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-01-02T03:04:05Z`,
/// fractional seconds and `+hh:mm` offsets accepted).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let tz_at = rest
        .find(['Z', 'z', '+'])
        .or_else(|| rest.rfind('-'))
        .unwrap_or(rest.len());
    let (time, tz) = rest.split_at(tz_at);
    let mut t = time.splitn(3, ':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.split('.').next()?.parse().ok()?;
    let offset = match tz {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let (oh, om) = tz[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// kubectl's human-readable duration: `5s`, `3m2s`, `15m`, `4h10m`, `20h`, `2d3h`, `45d`, `3y2d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of `timestamp` at `now`, or `<unknown>` as kubectl prints for a missing timestamp.
pub fn age(timestamp: Option<&str>, now: &str) -> String {
    match (timestamp.and_then(parse_rfc3339), parse_rfc3339(now)) {
        (Some(t), Some(n)) => human_duration(n - t),
        _ => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (4 * 3600 + 10 * 60, "4h10m"),
            (20 * 3600 + 59 * 60, "20h"),
            (51 * 3600, "2d3h"),
            (7 * 86_400, "7d"),
            (45 * 86_400, "45d"),
            (365 * 3 * 86_400 + 2 * 86_400, "3y2d"),
            (365 * 9 * 86_400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn rfc3339_parsing() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(
            parse_rfc3339("2026-11-25T06:12:59.123456Z"),
            parse_rfc3339("2026-11-25T06:12:59Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T08:12:59+02:00"),
            parse_rfc3339("2026-11-25T06:12:59Z")
        );
        assert_eq!(parse_rfc3339("not a time"), None);
        assert_eq!(
            age(Some("2026-01-01T00:00:00Z"), "2026-01-01T00:03:02Z"),
            "3m2s"
        );
        assert_eq!(age(None, "2026-01-01T00:00:00Z"), "<unknown>");
    }
}
