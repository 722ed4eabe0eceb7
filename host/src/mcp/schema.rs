//! Validation of tool arguments against the tool's own `inputSchema`: the validator is
//! [`crate::domain::schema`] (plugins check their settings with it too); this module keeps the name tool
//! handlers use and the conformance test against the catalog's schemas.

pub use crate::domain::schema::*;

#[cfg(test)]
mod conformance;
