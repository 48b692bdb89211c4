//! Parsing of Kubernetes quantities into numbers, for comparing volume sizes.

/// Parses a quantity such as `10Gi`, `500M`, `1.5Ti` or `1e3` into bytes; `None` if malformed.
pub fn parse_bytes(text: &str) -> Option<u128> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        exponent if exponent.starts_with(['e', 'E']) => 10u128.checked_pow(exponent[1..].parse().ok()?)?,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    whole.checked_mul(multiplier)?.checked_add(fraction.checked_mul(multiplier)? / scale)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn binary_decimal_fractional_and_exponent_forms_parse() {
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("1500Mi"), Some(1500 << 20));
        assert_eq!(parse_bytes("2G"), Some(2_000_000_000));
        assert_eq!(parse_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_bytes("1e3"), Some(1000));
        assert_eq!(parse_bytes("123"), Some(123));
        assert!(parse_bytes("1500Mi") < parse_bytes("2Gi"));
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for bad in ["", "Gi", "lots", "1Xi", "1.2.3Gi", "-1Gi"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
