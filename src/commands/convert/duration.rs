//! ESO's durations are Go's (`time.ParseDuration`: `1h`, `1h30m`, `1.5h`,
//! `90s`, `500ms`); `refreshInterval` here takes whole `h`/`m`/`s` and at
//! least `10s`, or `0`.

/// `text` as a `refreshInterval`, or why it has none.
pub fn refresh_interval(text: &str) -> Result<String, String> {
    let seconds = go_duration_seconds(text)?;
    if seconds == 0.0 {
        return Ok("0".to_owned());
    }
    if seconds.fract() != 0.0 {
        return Err(format!(
            "{text:?} is not a whole number of seconds; refreshInterval takes h, m and s"
        ));
    }
    if seconds < 10.0 {
        return Err(format!(
            "{text:?} is under refreshInterval's minimum of 10s"
        ));
    }
    // Whole seconds of a parsed Go duration fit in u64 (at most ~292 years).
    let total = seconds as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut out = String::new();
    for (n, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    Ok(out)
}

/// Seconds of a Go duration string: a sequence of decimal numbers, each
/// with a unit among `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone.
fn go_duration_seconds(text: &str) -> Result<f64, String> {
    let invalid = || format!("{text:?} is not a Go duration (such as 1h30m)");
    if text == "0" {
        return Ok(0.0);
    }
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_become_whole_hours_minutes_and_seconds() {
        for (go, ours) in [
            ("1h", "1h"),
            ("1h0m0s", "1h"),
            ("90m", "1h30m"),
            ("1.5h", "1h30m"),
            ("15s", "15s"),
            ("0", "0"),
            ("0s", "0"),
            ("24h", "24h"),
            ("10000ms", "10s"),
        ] {
            assert_eq!(refresh_interval(go).as_deref(), Ok(ours), "{go}");
        }
    }

    #[test]
    fn durations_with_no_equivalent_say_why() {
        for (go, why) in [
            ("5s", "minimum"),
            ("10.5s", "whole number"),
            ("1d", "not a Go duration"),
            ("-1h", "not a Go duration"),
            ("", "not a Go duration"),
            ("h", "not a Go duration"),
        ] {
            let refused = refresh_interval(go).unwrap_err();
            assert!(refused.contains(why), "{go}: {refused}");
        }
    }
}
