//! Dotted numeric version ordering ("14.0.12737"), as the managed product and
//! OS releases write them.
//!
//! Parts compare as numbers of any length (no overflow: `14.0.9999` <
//! `14.0.10000`), missing trailing parts count as zero (`14.0` == `14.0.0`),
//! and anything that is not a dotted list of decimal numbers is an error that
//! names the input, never a silent "equal".

use std::cmp::Ordering;

/// Why a version string could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version {input:?} is empty")]
    Empty { input: String },
    #[error("version {input:?}: part {part:?} is not a decimal number")]
    NotNumeric { input: String, part: String },
}

/// Orders two dotted numeric versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let left = parts(a)?;
    let right = parts(b)?;
    let length = left.len().max(right.len());
    for index in 0..length {
        // A missing part is a zero part: "14.0" and "14.0.0" name one version.
        let left_part = left.get(index).copied().unwrap_or("0");
        let right_part = right.get(index).copied().unwrap_or("0");
        let ordering = compare_decimal(left_part, right_part);
        if ordering != Ordering::Equal {
            return Ok(ordering);
        }
    }
    Ok(Ordering::Equal)
}

/// True when `installed` is `target` or newer.
pub fn is_at_least(installed: &str, target: &str) -> Result<bool, VersionError> {
    Ok(compare(installed, target)? != Ordering::Less)
}

/// Checks that `input` is a dotted numeric version without comparing it.
pub fn validate(input: &str) -> Result<(), VersionError> {
    parts(input).map(|_| ())
}

/// Splits a version into its decimal parts, leading zeros stripped.
fn parts(input: &str) -> Result<Vec<&str>, VersionError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(VersionError::Empty {
            input: input.to_string(),
        });
    }
    trimmed
        .split('.')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(VersionError::NotNumeric {
                    input: input.to_string(),
                    part: part.to_string(),
                });
            }
            let significant = part.trim_start_matches('0');
            Ok(if significant.is_empty() { "0" } else { significant })
        })
        .collect()
}

/// Compares two decimal strings without leading zeros: the longer is larger,
/// equal lengths compare digit by digit. No parsing, so no overflow.
fn compare_decimal(left: &str, right: &str) -> Ordering {
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, expected: Ordering) {
        assert_eq!(compare(a, b).expect("comparable"), expected, "{a} vs {b}");
        assert_eq!(compare(b, a).expect("comparable"), expected.reverse(), "{b} vs {a}");
    }

    #[test]
    fn parts_compare_as_numbers_not_text() {
        check("14.0.9999", "14.0.10000", Ordering::Less);
        check("14.0.12737", "14.0.12737", Ordering::Equal);
        check("14.1", "14.0.99999", Ordering::Greater);
        check("2", "10", Ordering::Less);
    }

    #[test]
    fn missing_trailing_parts_are_zero() {
        check("14.0", "14.0.0", Ordering::Equal);
        check("14", "14.0.0.0", Ordering::Equal);
        check("14.0", "14.0.1", Ordering::Less);
    }

    #[test]
    fn leading_zeros_and_huge_parts_do_not_overflow() {
        check("14.01", "14.1", Ordering::Equal);
        check("1.000", "1", Ordering::Equal);
        check(
            "1.99999999999999999999999999999",
            "1.100000000000000000000000000000",
            Ordering::Less,
        );
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        check(" 14.0.1\n", "14.0.1", Ordering::Equal);
    }

    #[test]
    fn non_numeric_parts_are_errors_naming_the_input() {
        for bad in ["14.0.a", "v14.0", "14..0", "14.0.", ".14", "14.0-rc1", "+1", "１４"] {
            let error = compare(bad, "14.0").expect_err(bad);
            assert!(error.to_string().contains(bad), "{error} should name {bad}");
            assert!(compare("14.0", bad).is_err());
            assert!(validate(bad).is_err());
        }
    }

    #[test]
    fn empty_versions_are_errors() {
        assert_eq!(compare("", "1"), Err(VersionError::Empty { input: String::new() }));
        assert!(compare("1", "   ").is_err());
    }

    #[test]
    fn is_at_least_includes_equal() {
        assert!(is_at_least("14.0.12737", "14.0.12737").expect("valid"));
        assert!(is_at_least("14.0.12738", "14.0.12737").expect("valid"));
        assert!(!is_at_least("14.0.9999", "14.0.10000").expect("valid"));
        assert!(is_at_least("x", "1").is_err());
    }
}
