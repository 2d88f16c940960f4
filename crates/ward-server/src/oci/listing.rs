//! Discovery: the version check, the catalog, tag lists and referrers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use ward_core::manifest::Descriptor;
use ward_core::{Digest, ErrorCode, media};
use ward_store::meta::RepositoryPage;

use super::Ctx;
use crate::access::Verdict;
use crate::error::{ApiError, ApiResult};
use crate::http::{next_link, page_size, query_value};
use ward_auth::policy::{Action, TagContext};

/// `GET /v2/`.
pub(super) fn ping() -> Response {
    json_response(json!({}), None)
}

fn json_response(body: Value, link: Option<String>) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// The page size a listing uses: `n` if given (clamped, with a `Link` to the
/// rest), else the configured default.
fn page_limit(ctx: &Ctx) -> ApiResult<u32> {
    let limits = &ctx.state.config.limits;
    let n =
        page_size(&ctx.query).map_err(|m| ApiError::new(ErrorCode::PaginationNumberInvalid, m))?;
    Ok(n.unwrap_or(limits.page_entries_default)
        .min(limits.page_entries_max))
}

/// A filtered page: the names to return and, when more may follow, the name
/// to continue after (the last one examined, kept or not).
struct FilteredPage {
    names: Vec<String>,
    next: Option<String>,
}

/// Pages through names from `fetch`, keeping those `keep` accepts, until `n`
/// are found. At most `scan_max` names are examined per request; past that the
/// page is returned short with a `Link` to continue, which the spec allows.
/// `None` when `fetch` says the listing does not exist.
async fn filtered_page<F, Fut>(
    mut fetch: F,
    keep: impl Fn(&str) -> bool,
    last: Option<&str>,
    n: u32,
    scan_max: usize,
) -> ApiResult<Option<FilteredPage>>
where
    F: FnMut(Option<String>, u32) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Option<RepositoryPage>>>,
{
    let mut names = Vec::new();
    let mut cursor = last.map(str::to_owned);
    let mut scanned = 0usize;
    loop {
        let Some(page) = fetch(cursor.clone(), n.max(1)).await? else {
            return Ok(None);
        };
        if n == 0 {
            return Ok(Some(FilteredPage { names, next: None }));
        }
        let mut left_over = false;
        for name in page.names {
            if names.len() == n as usize {
                left_over = true;
                break;
            }
            scanned += 1;
            if keep(&name) {
                names.push(name.clone());
            }
            cursor = Some(name);
        }
        let more = left_over || page.more;
        if !more {
            return Ok(Some(FilteredPage { names, next: None }));
        }
        if names.len() == n as usize || scanned >= scan_max {
            return Ok(Some(FilteredPage {
                names,
                next: cursor,
            }));
        }
    }
}

fn filtered_link(path: &str, page: &FilteredPage, n: u32) -> Option<String> {
    page.next
        .as_deref()
        .map(|next| next_link(path, &[("last", next), ("n", &n.to_string())]))
}

fn may_pull(ctx: &Ctx, repo: &str, tag: Option<&str>) -> bool {
    let tag = tag.map_or(TagContext::Absent, TagContext::Tag);
    matches!(
        ctx.state
            .access
            .authorize(&ctx.caller, Action::Pull, Some(repo), tag),
        Verdict::Allow
    )
}

/// How many names one listing request may examine while filtering.
fn scan_max(ctx: &Ctx) -> usize {
    10 * ctx.state.config.limits.page_entries_max as usize
}

/// `GET /v2/_catalog`: only repositories the caller may pull.
pub(super) async fn catalog(ctx: &Ctx) -> ApiResult<Response> {
    let n = page_limit(ctx)?;
    let meta = &ctx.state.meta;
    let fetch = |last: Option<String>, n| async move {
        Ok(Some(meta.repositories(last.as_deref(), n).await?))
    };
    let keep = |repo: &str| may_pull(ctx, repo, None);
    let last = query_value(&ctx.query, "last");
    let page = filtered_page(fetch, keep, last, n, scan_max(ctx))
        .await?
        .unwrap_or(FilteredPage {
            names: Vec::new(),
            next: None,
        });
    let link = filtered_link("/v2/_catalog", &page, n);
    Ok(json_response(json!({ "repositories": page.names }), link))
}

/// `GET /v2/<name>/tags/list`: only tags the caller may pull.
pub(super) async fn tags(ctx: &Ctx, name: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let n = page_limit(ctx)?;
    let meta = &ctx.state.meta;
    let repo = &name;
    let fetch =
        |last: Option<String>, n| async move { Ok(meta.tags(repo, last.as_deref(), n).await?) };
    let keep = |tag: &str| may_pull(ctx, repo.as_str(), Some(tag));
    let last = query_value(&ctx.query, "last");
    let page = filtered_page(fetch, keep, last, n, scan_max(ctx))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NameUnknown,
                format!("repository {name} does not exist"),
            )
            .with_detail(json!({ "name": name.as_str() }))
        })?;
    let link = filtered_link(&format!("/v2/{name}/tags/list"), &page, n);
    Ok(json_response(
        json!({ "name": name.as_str(), "tags": page.names }),
        link,
    ))
}

/// `GET /v2/<name>/referrers/<digest>`: always an image index, empty when
/// nothing refers to the digest.
pub(super) async fn referrers(ctx: &Ctx, name: &str, digest: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let subject: Digest = digest.parse()?;
    let artifact_type = query_value(&ctx.query, "artifactType").filter(|t| !t.is_empty());
    let after = query_value(&ctx.query, "last")
        .map(str::parse::<Digest>)
        .transpose()?;
    let limit = ctx.state.config.limits.page_entries_max;
    let (found, more) = ctx
        .state
        .meta
        .referrers(&name, &subject, artifact_type, after.as_ref(), limit)
        .await?;
    let link = match (more, found.last()) {
        (true, Some(last)) => {
            let last = last.digest.to_string();
            let mut params = vec![("last", last.as_str())];
            if let Some(t) = artifact_type {
                params.push(("artifactType", t));
            }
            Some(next_link(
                &format!("/v2/{name}/referrers/{subject}"),
                &params,
            ))
        }
        _ => None,
    };
    let manifests: Vec<Descriptor> = found
        .into_iter()
        .map(|r| Descriptor {
            media_type: r.media_type,
            digest: r.digest,
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: r.annotations,
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json_response(body, link);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::OCI_INDEX),
    );
    if artifact_type.is_some() {
        headers.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
