//! Labels an agent or an enrolment token carries; they appear in selectors.

use std::collections::{BTreeMap, HashMap};

use super::{MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS, Refused, refuse};

/// Labels that passed the edge checks: at most [`MAX_LABELS`]; keys 1 to
/// [`MAX_LABEL_KEY`] bytes of `[A-Za-z0-9-_./]`; values at most
/// [`MAX_LABEL_VALUE`] bytes without `,` or a newline (selectors and the
/// stored text split on those).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidLabels(BTreeMap<String, String>);

impl ValidLabels {
    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// Checks labels where they are, without taking or copying them (a hello
/// keeps its own map; see [`ValidLabels`] for the rules).
pub fn check<'a>(labels: impl ExactSizeIterator<Item = (&'a String, &'a String)>) -> Result<(), Refused> {
    if labels.len() > MAX_LABELS {
        return refuse(format!("more than {MAX_LABELS} labels"));
    }
    for (key, value) in labels {
        if key.is_empty()
            || key.len() > MAX_LABEL_KEY
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            return refuse(format!(
                "label key {key:?} must be 1-{MAX_LABEL_KEY} of [A-Za-z0-9-_./]"
            ));
        }
        if value.len() > MAX_LABEL_VALUE || value.contains([',', '\n']) {
            return refuse(format!("label {key} value is too long or holds ',' or a newline"));
        }
        super::no_steering(&format!("label {key} value"), value)?;
    }
    Ok(())
}

impl TryFrom<BTreeMap<String, String>> for ValidLabels {
    type Error = Refused;

    fn try_from(labels: BTreeMap<String, String>) -> Result<Self, Refused> {
        check(labels.iter())?;
        Ok(ValidLabels(labels))
    }
}

/// Labels as protobuf maps carry them (a hello, a token request).
impl TryFrom<HashMap<String, String>> for ValidLabels {
    type Error = Refused;

    fn try_from(labels: HashMap<String, String>) -> Result<Self, Refused> {
        ValidLabels::try_from(labels.into_iter().collect::<BTreeMap<_, _>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(key.to_string(), value.to_string())])
    }

    fn many(count: usize) -> BTreeMap<String, String> {
        (0..count).map(|i| (format!("k{i}"), "v".to_string())).collect()
    }

    #[test]
    fn label_count_accepts_the_limit_and_refuses_one_over() {
        assert!(ValidLabels::try_from(many(MAX_LABELS)).is_ok());
        assert_eq!(
            ValidLabels::try_from(many(MAX_LABELS + 1)),
            Err(Refused(format!("more than {MAX_LABELS} labels")))
        );
    }

    #[test]
    fn key_length_accepts_the_limit_and_refuses_one_over_or_empty() {
        assert!(ValidLabels::try_from(one(&"k".repeat(MAX_LABEL_KEY), "v")).is_ok());
        let long = "k".repeat(MAX_LABEL_KEY + 1);
        assert_eq!(
            ValidLabels::try_from(one(&long, "v")),
            Err(Refused(format!(
                "label key {long:?} must be 1-{MAX_LABEL_KEY} of [A-Za-z0-9-_./]"
            )))
        );
        assert!(ValidLabels::try_from(one("", "v")).is_err());
    }

    #[test]
    fn key_characters_outside_the_set_are_refused() {
        assert!(ValidLabels::try_from(one("a-b_c.d/e9", "v")).is_ok());
        assert!(ValidLabels::try_from(one("a b", "v")).is_err());
        assert!(ValidLabels::try_from(one("a=b", "v")).is_err());
    }

    #[test]
    fn value_accepts_the_limit_and_refuses_one_over_a_comma_or_a_newline() {
        assert!(ValidLabels::try_from(one("k", &"v".repeat(MAX_LABEL_VALUE))).is_ok());
        let refused = Err(Refused("label k value is too long or holds ',' or a newline".into()));
        assert_eq!(
            ValidLabels::try_from(one("k", &"v".repeat(MAX_LABEL_VALUE + 1))),
            refused
        );
        assert_eq!(ValidLabels::try_from(one("k", "a,b")), refused);
        assert_eq!(ValidLabels::try_from(one("k", "a\nb")), refused);
    }
}
