//! Project resolution: a `project_id` argument may be a project id, a registry name or a path.
//!
//! The registry is the seed's `projects.json` (`[{root_path, name, project_id?}]`). A path that is not in the
//! registry is still a project when it lies inside an allowed root, so a user can point at any checkout
//! without editing the registry first. The registry is re-read only when its modification time changes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{normalize_path, Config};

/// A resolved project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Stable id: the registry's `project_id`, else derived from the canonical root path.
    pub project_id: String,
    /// Display name: the registry's, else the root's last path component.
    pub name: String,
    /// Canonical root directory.
    pub root_path: PathBuf,
    /// `registry` when listed in projects.json, `path` when resolved from an allowed path.
    pub source: &'static str,
}

/// Why a project could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProjectError {
    /// Nothing matches the reference.
    #[error("project not found: {reference}")]
    NotFound {
        /// What the caller passed.
        reference: String,
    },
    /// The path exists but lies outside every allowed root.
    #[error("{path} is outside the allowed roots")]
    OutsideAllowedRoots {
        /// The offending path.
        path: PathBuf,
    },
    /// The registry file exists but cannot be parsed.
    #[error("projects registry {path} is invalid: {message}")]
    BadRegistry {
        /// The registry file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
struct RegistryEntry {
    root_path: PathBuf,
    name: Option<String>,
    project_id: Option<String>,
}

/// Resolves project references against the registry and the allowed roots.
#[derive(Debug)]
pub struct ProjectRegistry {
    registry_path: PathBuf,
    allowed_roots: Vec<PathBuf>,
    cache: Mutex<Option<(Option<SystemTime>, Vec<Project>)>>,
}

impl ProjectRegistry {
    /// A registry reading `config.projects_registry_path`.
    pub fn new(config: &Config) -> ProjectRegistry {
        ProjectRegistry {
            registry_path: config.projects_registry_path.clone(),
            allowed_roots: config
                .allowed_roots
                .iter()
                .map(|r| normalize_path(r))
                .collect(),
            cache: Mutex::new(None),
        }
    }

    /// True when `path` lies inside an allowed root (after normalisation, so `..` cannot escape).
    pub fn is_allowed(&self, path: &Path) -> bool {
        self.contains_normalized(&normalize_path(path))
    }

    /// [`is_allowed`](Self::is_allowed) for a path already normalised (resolving it again would cost a system
    /// call per path component on every submit).
    fn contains_normalized(&self, path: &Path) -> bool {
        self.allowed_roots.iter().any(|root| path.starts_with(root))
    }

    /// Every registered project (inside or outside the allowed roots).
    pub fn list(&self) -> Result<Vec<Project>, ProjectError> {
        let modified = std::fs::metadata(&self.registry_path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((cached_mtime, projects)) = cache.as_ref() {
            if *cached_mtime == modified {
                return Ok(projects.clone());
            }
        }
        let projects = self.read_registry()?;
        *cache = Some((modified, projects.clone()));
        Ok(projects)
    }

    fn read_registry(&self) -> Result<Vec<Project>, ProjectError> {
        let text = match std::fs::read_to_string(&self.registry_path) {
            Ok(text) => text,
            // No registry is a normal state: projects are then resolved by path only.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(ProjectError::BadRegistry {
                    path: self.registry_path.clone(),
                    message: err.to_string(),
                })
            }
        };
        let entries: Vec<RegistryEntry> =
            serde_json::from_str(&text).map_err(|err| ProjectError::BadRegistry {
                path: self.registry_path.clone(),
                message: err.to_string(),
            })?;
        let base = self
            .registry_path
            .parent()
            .unwrap_or_else(|| Path::new("/"));
        Ok(entries
            .into_iter()
            .map(|entry| {
                let root = if entry.root_path.is_absolute() {
                    entry.root_path
                } else {
                    base.join(entry.root_path)
                };
                let root_path = normalize_path(&root);
                Project {
                    project_id: entry
                        .project_id
                        .filter(|id| !id.trim().is_empty())
                        .unwrap_or_else(|| derived_id(&root_path)),
                    name: entry.name.unwrap_or_else(|| basename(&root_path)),
                    root_path,
                    source: "registry",
                }
            })
            .collect())
    }

    /// Resolves an id, a name or a path to a project inside the allowed roots.
    pub fn resolve(&self, reference: &str) -> Result<Project, ProjectError> {
        let reference = reference.trim();
        let not_found = || ProjectError::NotFound {
            reference: reference.to_string(),
        };
        if reference.is_empty() {
            return Err(not_found());
        }
        let projects = self.list()?;
        let found = projects
            .iter()
            .find(|p| p.project_id == reference)
            .or_else(|| projects.iter().find(|p| p.name == reference))
            .cloned();
        // A path reference is normalised here, now; a registry entry's root was normalised when the registry was
        // read and may be a symlink changed since, so it is resolved again.
        let by_path = found.is_none();
        let project = match found {
            Some(project) => project,
            None => {
                let path = Path::new(reference);
                if !path.is_absolute() {
                    return Err(not_found());
                }
                let root_path = normalize_path(path);
                if let Some(project) = projects.iter().find(|p| p.root_path == root_path) {
                    project.clone()
                } else if root_path.is_dir() {
                    Project {
                        project_id: derived_id(&root_path),
                        name: basename(&root_path),
                        root_path,
                        source: "path",
                    }
                } else {
                    return Err(not_found());
                }
            }
        };
        let allowed = if by_path {
            self.contains_normalized(&project.root_path)
        } else {
            self.is_allowed(&project.root_path)
        };
        if !allowed {
            return Err(ProjectError::OutsideAllowedRoots {
                path: project.root_path,
            });
        }
        Ok(project)
    }

    /// The project whose root contains `cwd`, if any (longest root wins); else an ad-hoc project for `cwd`.
    pub fn for_cwd(&self, cwd: &Path) -> Result<Project, ProjectError> {
        let cwd = normalize_path(cwd);
        if !self.contains_normalized(&cwd) {
            return Err(ProjectError::OutsideAllowedRoots { path: cwd });
        }
        let projects = self.list()?;
        let best = projects
            .into_iter()
            .filter(|p| cwd.starts_with(&p.root_path))
            .max_by_key(|p| p.root_path.as_os_str().len());
        Ok(best.unwrap_or_else(|| Project {
            project_id: derived_id(&cwd),
            name: basename(&cwd),
            root_path: cwd,
            source: "path",
        }))
    }
}

fn derived_id(root: &Path) -> String {
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    format!("proj_{}", &hex::encode(digest)[..16])
}

fn basename(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        root: PathBuf,
        registry: ProjectRegistry,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn fixture(registry_json: &str) -> Fixture {
        let root = std::env::temp_dir().join(format!("ccp-projects-{}", uuid::Uuid::new_v4()));
        let projects = root.join("projects");
        for dir in ["alpha", "beta/sub"] {
            std::fs::create_dir_all(projects.join(dir)).expect("mkdir");
        }
        std::fs::create_dir_all(root.join("outside")).expect("mkdir");
        std::fs::write(projects.join("projects.json"), registry_json).expect("registry");
        let config = Config::for_tests(&root);
        Fixture {
            registry: ProjectRegistry::new(&config),
            root,
        }
    }

    #[test]
    fn resolves_by_id_name_and_path() {
        let fx = fixture(
            r#"[{"root_path": "alpha", "name": "Alpha", "project_id": "p-alpha"}, {"root_path": "beta"}]"#,
        );
        let by_id = fx.registry.resolve("p-alpha").expect("by id");
        assert_eq!(by_id.name, "Alpha");
        assert_eq!(fx.registry.resolve("Alpha").expect("by name"), by_id);
        let path = fx.root.join("projects/alpha");
        assert_eq!(
            fx.registry
                .resolve(&path.to_string_lossy())
                .expect("by path"),
            by_id
        );
        let beta = fx
            .registry
            .resolve("beta")
            .expect("name defaults to basename");
        assert!(beta.project_id.starts_with("proj_"));
    }

    #[test]
    fn unregistered_path_inside_roots_is_an_ad_hoc_project() {
        let fx = fixture("[]");
        let path = fx.root.join("projects/beta/sub");
        let project = fx
            .registry
            .resolve(&path.to_string_lossy())
            .expect("ad hoc");
        assert_eq!(project.source, "path");
        assert_eq!(project.name, "sub");
    }

    #[test]
    fn unknown_and_outside_references_are_refused() {
        let fx = fixture("[]");
        assert!(matches!(
            fx.registry.resolve("nope"),
            Err(ProjectError::NotFound { .. })
        ));
        let outside = fx.root.join("outside");
        assert!(matches!(
            fx.registry.resolve(&outside.to_string_lossy()),
            Err(ProjectError::OutsideAllowedRoots { .. })
        ));
        let escape = fx.root.join("projects/../outside");
        assert!(matches!(
            fx.registry.resolve(&escape.to_string_lossy()),
            Err(ProjectError::OutsideAllowedRoots { .. })
        ));
    }

    #[test]
    fn cwd_maps_to_the_innermost_registered_project() {
        let fx = fixture(
            r#"[{"root_path": "beta", "name": "Beta"}, {"root_path": "beta/sub", "name": "Sub"}]"#,
        );
        let project = fx
            .registry
            .for_cwd(&fx.root.join("projects/beta/sub"))
            .expect("cwd");
        assert_eq!(project.name, "Sub");
    }

    #[test]
    fn malformed_registry_is_reported() {
        let fx = fixture("{not json");
        assert!(matches!(
            fx.registry.resolve("x"),
            Err(ProjectError::BadRegistry { .. })
        ));
    }
}
