//! Host bindings, one module per WIT version folder (`wit/since_vX.Y.Z` -> `since_vX_Y_Z.rs`).
//!
//! **API Boundary:** the WIT files are the contract with third-party plugins. A released folder is
//! frozen; a change means a new folder and a new module here.
//!
//! The newest module is [`latest`]: the host speaks its types. Each older module maps the interfaces its
//! version shares with the latest onto it (bindgen `with:`) and converts its changed types with `From`, so
//! host functions are implemented once. The loader picks a plugin's bindings from the `wit` of its manifest
//! ([`select`], newest first).

pub mod since_v0_1_0;
pub mod since_v0_2_0;

pub use since_v0_2_0 as latest;

use std::fmt;

/// The WIT package name every version shares.
pub const PACKAGE: &str = "codex-control-plane:plugin";

/// A `major.minor.patch` WIT package version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WitVersion {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

impl WitVersion {
    /// Builds a version.
    pub const fn new(major: u64, minor: u64, patch: u64) -> WitVersion {
        WitVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `X.Y.Z` (no pre-release or build suffix); `None` if malformed.
    pub fn parse(text: &str) -> Option<WitVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(WitVersion::new(major, minor, patch))
    }

    /// Whether a plugin built against `self` can be served by bindings for `host`: semver
    /// compatibility, where for `0.x` the minor version plays the role of the major.
    pub fn is_served_by(self, host: WitVersion) -> bool {
        if self.major != host.major {
            return false;
        }
        self.major != 0 || self.minor == host.minor
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Versions this host serves, newest first.
pub const KNOWN_VERSIONS: &[WitVersion] = &[since_v0_2_0::MIN_VERSION, since_v0_1_0::MIN_VERSION];

/// Which bindings serve a plugin that declares `wanted`, if any.
pub fn select(wanted: WitVersion) -> Option<WitVersion> {
    KNOWN_VERSIONS
        .iter()
        .copied()
        .find(|known| wanted.is_served_by(*known))
}

/// The known versions as text, for error messages.
pub fn known_versions_text() -> String {
    KNOWN_VERSIONS
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_major_versions_need_the_same_minor() {
        // 0.1.x is served by 0.1.0; 0.2.0 and 1.0.0 are not.
        let host = WitVersion::new(0, 1, 0);
        assert!(WitVersion::new(0, 1, 3).is_served_by(host));
        assert!(!WitVersion::new(0, 2, 0).is_served_by(host));
        assert!(!WitVersion::new(1, 1, 0).is_served_by(host));
        assert!(WitVersion::new(1, 4, 0).is_served_by(WitVersion::new(1, 0, 0)));
    }

    #[test]
    fn each_known_minor_selects_its_own_bindings() {
        // Newest first: 0.2.x gets the 0.2 bindings, 0.1.x the 0.1 ones, 0.3 none.
        assert_eq!(KNOWN_VERSIONS[0], latest::MIN_VERSION);
        assert_eq!(
            select(WitVersion::new(0, 2, 1)),
            Some(since_v0_2_0::MIN_VERSION)
        );
        assert_eq!(
            select(WitVersion::new(0, 1, 0)),
            Some(since_v0_1_0::MIN_VERSION)
        );
        assert_eq!(select(WitVersion::new(0, 3, 0)), None);
    }

    #[test]
    fn parse_rejects_malformed_versions() {
        // Exactly three numeric parts.
        assert_eq!(WitVersion::parse("0.1.0"), Some(WitVersion::new(0, 1, 0)));
        assert_eq!(WitVersion::parse("0.1"), None);
        assert_eq!(WitVersion::parse("0.1.0.1"), None);
        assert_eq!(WitVersion::parse("x.1.0"), None);
    }
}
