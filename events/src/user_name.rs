//! The one rule for a user's name, wherever a name comes in: the `X-Slotpool-User`
//! header, an admin API path, a SCIM `userName`.
//!
//! Why one rule: the header can carry only visible ASCII (and spaces inside), so a name
//! outside that charset could be provisioned through SCIM but never log in, and a
//! confusable one (`bob\u{200b}`, full-width `ａｌｉｃｅ`) would sit beside `bob` and
//! `alice` as a different user. A name from SCIM is therefore normalised with Unicode
//! NFKC first (full-width `ａｌｉｃｅ` becomes `alice`, which then meets the directory's
//! case-insensitive uniqueness), and what is still outside the header's charset after
//! that (zero-width characters, controls, letters beyond ASCII) is refused.

use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// Longest user name accepted, in bytes.
pub const MAX_LEN: usize = 256;

/// Why a name is not a user name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Empty, or only spaces.
    #[error("a user name is not empty")]
    Empty,
    /// Longer than [`MAX_LEN`] bytes.
    #[error("a user name is at most {MAX_LEN} bytes")]
    TooLong,
    /// Spaces before or after the name (a proxy's header loses them).
    #[error("a user name has no spaces before or after it")]
    Padded,
    /// A character the user header cannot carry (after NFKC, for SCIM names).
    #[error(
        "a user name is visible ASCII (spaces inside allowed) after NFKC normalisation; {0:?} is not"
    )]
    Charset(char),
}

/// Whether `name` is a user name as the header carries it: 1 to [`MAX_LEN`] bytes of
/// visible ASCII and inner spaces.
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong);
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, ' '..='~')) {
        return Err(NameError::Charset(c));
    }
    if name.trim() != name {
        return Err(NameError::Padded);
    }
    Ok(())
}

/// `name` in NFKC, if that is a user name (see [`validate`]).
pub fn normalise(name: &str) -> Result<String, NameError> {
    let n: String = name.nfkc().collect();
    validate(&n)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusables_are_normalised_or_refused() {
        assert_eq!(normalise("ａｌｉｃｅ").as_deref(), Ok("alice"));
        assert_eq!(normalise("bob"), Ok("bob".into()));
        assert_eq!(normalise("ann@example.com"), Ok("ann@example.com".into()));
        assert_eq!(normalise("Ann Lee"), Ok("Ann Lee".into()));
        assert_eq!(
            normalise("bob\u{200b}"),
            Err(NameError::Charset('\u{200b}'))
        );
        assert_eq!(
            normalise("\u{feff}bob"),
            Err(NameError::Charset('\u{feff}'))
        );
        assert_eq!(normalise("josé"), Err(NameError::Charset('é')));
        assert_eq!(normalise("a\tb"), Err(NameError::Charset('\t')));
        assert_eq!(normalise(""), Err(NameError::Empty));
        assert_eq!(normalise("  "), Err(NameError::Empty));
        assert_eq!(normalise(" bob"), Err(NameError::Padded));
        assert_eq!(normalise(&"u".repeat(257)), Err(NameError::TooLong));
        assert_eq!(validate(&"u".repeat(256)), Ok(()));
    }

    proptest::proptest! {
        /// Any text: an answer, never a panic; what passes is a fixed point.
        #[test]
        fn normalising_is_idempotent(s in proptest::prelude::any::<String>()) {
            if let Ok(n) = normalise(&s) {
                proptest::prop_assert_eq!(normalise(&n), Ok(n.clone()));
                proptest::prop_assert_eq!(validate(&n), Ok(()));
            }
        }
    }
}
