//! The OCI URL space: parsing paths into routes, and every endpoint with the
//! access it requires.
//!
//! Repository names contain slashes, so paths are parsed by hand: the route is
//! decided by the right-most marker (`/manifests/`, `/blobs/`, ...) whose
//! remainder holds no slash, which keeps repositories named like `blobs/x`
//! working.

use axum::http::Method;
use ward_core::ErrorCode;

use crate::error::ApiError;

/// A parsed `/v2/...` path. Names and references are raw and validated by handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags {
        /// Repository.
        name: String,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        /// Repository.
        name: String,
        /// Tag or digest.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        /// Repository.
        name: String,
        /// Digest.
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        /// Repository.
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        /// Repository.
        name: String,
        /// Session id.
        id: String,
    },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        /// Repository.
        name: String,
        /// Subject digest.
        digest: String,
    },
}

/// Parses a request path; `None` if it is not in the OCI URL space.
pub fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    match rest {
        "" | "/" => return Some(Route::Base),
        "/_catalog" => return Some(Route::Catalog),
        _ => {}
    }
    let rest = rest.strip_prefix('/')?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags {
            name: name.to_owned(),
        });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart {
            name: name.to_owned(),
        });
    }
    const MARKERS: [&str; 4] = ["/blobs/uploads/", "/manifests/", "/referrers/", "/blobs/"];
    let (marker, at) = MARKERS
        .iter()
        .filter_map(|m| {
            let at = rest.rfind(m)?;
            let tail = &rest[at + m.len()..];
            (!tail.is_empty() && !tail.contains('/')).then_some((*m, at))
        })
        .max_by_key(|(m, at)| (*at, m.len()))?;
    let name = rest[..at].to_owned();
    let tail = rest[at + marker.len()..].to_owned();
    Some(match marker {
        "/blobs/uploads/" => Route::Upload { name, id: tail },
        "/manifests/" => Route::Manifest {
            name,
            reference: tail,
        },
        "/referrers/" => Route::Referrers { name, digest: tail },
        _ => Route::Blob { name, digest: tail },
    })
}

/// Every operation of the OCI API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v2/`
    Ping,
    /// `GET /v2/_catalog`
    Catalog,
    /// `GET /v2/<name>/tags/list`
    ListTags,
    /// `GET /v2/<name>/manifests/<ref>`
    GetManifest,
    /// `HEAD /v2/<name>/manifests/<ref>`
    HeadManifest,
    /// `PUT /v2/<name>/manifests/<ref>`
    PutManifest,
    /// `DELETE /v2/<name>/manifests/<ref>`
    DeleteManifest,
    /// `GET /v2/<name>/blobs/<digest>`
    GetBlob,
    /// `HEAD /v2/<name>/blobs/<digest>`
    HeadBlob,
    /// `DELETE /v2/<name>/blobs/<digest>`
    DeleteBlob,
    /// `POST /v2/<name>/blobs/uploads/`
    StartUpload,
    /// `GET /v2/<name>/blobs/uploads/<id>`
    UploadStatus,
    /// `PATCH /v2/<name>/blobs/uploads/<id>`
    PatchUpload,
    /// `PUT /v2/<name>/blobs/uploads/<id>`
    FinishUpload,
    /// `DELETE /v2/<name>/blobs/uploads/<id>`
    CancelUpload,
    /// `GET /v2/<name>/referrers/<digest>`
    Referrers,
}

/// What an endpoint needs from the caller. Exhaustive by construction: a new
/// endpoint does not compile until it says what it requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Any authenticated caller.
    Authenticated,
    /// Read content of the named repository.
    Pull,
    /// Write content into the named repository.
    Push,
    /// Delete content of the named repository.
    Delete,
    /// List the registry's repositories.
    Catalog,
}

impl Endpoint {
    /// Every endpoint, for tests that walk the API.
    pub const ALL: [Endpoint; 16] = [
        Endpoint::Ping,
        Endpoint::Catalog,
        Endpoint::ListTags,
        Endpoint::GetManifest,
        Endpoint::HeadManifest,
        Endpoint::PutManifest,
        Endpoint::DeleteManifest,
        Endpoint::GetBlob,
        Endpoint::HeadBlob,
        Endpoint::DeleteBlob,
        Endpoint::StartUpload,
        Endpoint::UploadStatus,
        Endpoint::PatchUpload,
        Endpoint::FinishUpload,
        Endpoint::CancelUpload,
        Endpoint::Referrers,
    ];

    /// The access this endpoint requires.
    pub fn access(self) -> Access {
        match self {
            Endpoint::Ping => Access::Authenticated,
            Endpoint::Catalog => Access::Catalog,
            Endpoint::ListTags
            | Endpoint::GetManifest
            | Endpoint::HeadManifest
            | Endpoint::GetBlob
            | Endpoint::HeadBlob
            | Endpoint::Referrers => Access::Pull,
            Endpoint::PutManifest
            | Endpoint::StartUpload
            | Endpoint::UploadStatus
            | Endpoint::PatchUpload
            | Endpoint::FinishUpload
            | Endpoint::CancelUpload => Access::Push,
            Endpoint::DeleteManifest | Endpoint::DeleteBlob => Access::Delete,
        }
    }

    /// A short name for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Ping => "ping",
            Endpoint::Catalog => "catalog",
            Endpoint::ListTags => "tags_list",
            Endpoint::GetManifest => "manifest_get",
            Endpoint::HeadManifest => "manifest_head",
            Endpoint::PutManifest => "manifest_put",
            Endpoint::DeleteManifest => "manifest_delete",
            Endpoint::GetBlob => "blob_get",
            Endpoint::HeadBlob => "blob_head",
            Endpoint::DeleteBlob => "blob_delete",
            Endpoint::StartUpload => "upload_start",
            Endpoint::UploadStatus => "upload_status",
            Endpoint::PatchUpload => "upload_patch",
            Endpoint::FinishUpload => "upload_finish",
            Endpoint::CancelUpload => "upload_cancel",
            Endpoint::Referrers => "referrers",
        }
    }
}

/// The endpoint a method on a route names, or 405 naming the methods allowed.
pub fn endpoint(route: &Route, method: &Method) -> Result<Endpoint, ApiError> {
    let m = method.as_str();
    let found = match (route, m) {
        (Route::Base, "GET" | "HEAD") => Some(Endpoint::Ping),
        (Route::Catalog, "GET") => Some(Endpoint::Catalog),
        (Route::Tags { .. }, "GET") => Some(Endpoint::ListTags),
        (Route::Manifest { .. }, "GET") => Some(Endpoint::GetManifest),
        (Route::Manifest { .. }, "HEAD") => Some(Endpoint::HeadManifest),
        (Route::Manifest { .. }, "PUT") => Some(Endpoint::PutManifest),
        (Route::Manifest { .. }, "DELETE") => Some(Endpoint::DeleteManifest),
        (Route::Blob { .. }, "GET") => Some(Endpoint::GetBlob),
        (Route::Blob { .. }, "HEAD") => Some(Endpoint::HeadBlob),
        (Route::Blob { .. }, "DELETE") => Some(Endpoint::DeleteBlob),
        (Route::UploadStart { .. }, "POST") => Some(Endpoint::StartUpload),
        (Route::Upload { .. }, "GET") => Some(Endpoint::UploadStatus),
        (Route::Upload { .. }, "PATCH") => Some(Endpoint::PatchUpload),
        (Route::Upload { .. }, "PUT") => Some(Endpoint::FinishUpload),
        (Route::Upload { .. }, "DELETE") => Some(Endpoint::CancelUpload),
        (Route::Referrers { .. }, "GET") => Some(Endpoint::Referrers),
        _ => None,
    };
    found.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unsupported,
            format!("method {m} is not supported on this path"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str) -> Option<Route> {
        parse(path)
    }

    #[test]
    fn parses_the_url_space() {
        let s = |x: &str| x.to_owned();
        let cases = vec![
            ("/v2/", Some(Route::Base)),
            ("/v2", Some(Route::Base)),
            ("/v2/_catalog", Some(Route::Catalog)),
            ("/v2/a/b/tags/list", Some(Route::Tags { name: s("a/b") })),
            (
                "/v2/a/manifests/v1",
                Some(Route::Manifest {
                    name: s("a"),
                    reference: s("v1"),
                }),
            ),
            (
                "/v2/blobs/x/manifests/latest",
                Some(Route::Manifest {
                    name: s("blobs/x"),
                    reference: s("latest"),
                }),
            ),
            (
                "/v2/a/manifests/b/blobs/sha256:x",
                Some(Route::Blob {
                    name: s("a/manifests/b"),
                    digest: s("sha256:x"),
                }),
            ),
            (
                "/v2/a/blobs/uploads/",
                Some(Route::UploadStart { name: s("a") }),
            ),
            (
                "/v2/a/blobs/uploads",
                Some(Route::UploadStart { name: s("a") }),
            ),
            (
                "/v2/a/blobs/uploads/123",
                Some(Route::Upload {
                    name: s("a"),
                    id: s("123"),
                }),
            ),
            (
                "/v2/a/referrers/sha256:x",
                Some(Route::Referrers {
                    name: s("a"),
                    digest: s("sha256:x"),
                }),
            ),
            (
                "/v2/a/blobs/sha256:x",
                Some(Route::Blob {
                    name: s("a"),
                    digest: s("sha256:x"),
                }),
            ),
            ("/v2/a/manifests/", None),
            ("/v2/a/unknown/x", None),
            ("/v3/a/manifests/x", None),
            ("/v2x/a", None),
        ];
        for (path, want) in cases {
            assert_eq!(r(path), want, "{path}");
        }
    }

    #[test]
    fn every_route_and_method_resolves_or_is_refused() {
        let name = "n".to_owned();
        let routes = [
            Route::Base,
            Route::Catalog,
            Route::Tags { name: name.clone() },
            Route::Manifest {
                name: name.clone(),
                reference: "v".into(),
            },
            Route::Blob {
                name: name.clone(),
                digest: "d".into(),
            },
            Route::UploadStart { name: name.clone() },
            Route::Upload {
                name: name.clone(),
                id: "i".into(),
            },
            Route::Referrers {
                name,
                digest: "d".into(),
            },
        ];
        let methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"];
        let mut seen = std::collections::HashSet::new();
        for route in &routes {
            for m in methods {
                let method = Method::from_bytes(m.as_bytes()).unwrap();
                match endpoint(route, &method) {
                    Ok(e) => {
                        seen.insert(e);
                    }
                    Err(err) => assert_eq!(err.code, ErrorCode::Unsupported),
                }
            }
        }
        assert_eq!(
            seen.len(),
            Endpoint::ALL.len(),
            "every endpoint is reachable"
        );
    }
}
