//! The OCI Distribution API under `/v2/`.
//!
//! Requests arrive at one handler, [`dispatch`], which parses the path into a
//! [`route::Route`], resolves the [`route::Endpoint`] (and with it the access
//! the endpoint requires), then calls the endpoint's handler. Handlers call
//! the stores; they hold no rules that belong in a library.

mod blobs;
mod listing;
mod manifests;
pub mod route;
mod uploads;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use ward_core::ErrorCode;
use ward_core::name::RepositoryName;

use crate::access::{Caller, Verdict, challenge_error};
use crate::error::{ApiError, ApiResult};
use crate::http::query_pairs;
use crate::serve::ClientAddr;
use crate::state::AppState;
use route::{Access, Endpoint, Route};
use ward_auth::policy::{Action, TagContext};
use ward_core::name::{Reference, Tag};

/// What a handler knows about its request, besides the body.
pub(crate) struct Ctx {
    pub state: AppState,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub caller: Caller,
}

impl Ctx {
    /// Validates a repository name from the path.
    pub fn repository(&self, name: &str) -> ApiResult<RepositoryName> {
        Ok(RepositoryName::parse(
            name,
            self.state.config.limits.repository_name_bytes_max,
        )?)
    }
}

/// The single entry point of `/v2/`.
pub async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(route) = route::parse(parts.uri.path()) else {
        return ApiError::new(
            ErrorCode::NameUnknown,
            format!("no OCI endpoint at {}", parts.uri.path()),
        )
        .with_status(axum::http::StatusCode::NOT_FOUND)
        .into_response();
    };
    let endpoint = match route::endpoint(&route, &parts.method) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let ip = parts.extensions.get::<ClientAddr>().map(|a| a.0.ip());
    let secure = state.config.tls.is_some();
    let caller = match state
        .access
        .authenticate(&state.meta, &parts.headers, ip, secure)
        .await
    {
        Ok(c) => c,
        Err(failure) => {
            if let Err(e) = crate::audit::auth_failure(&state, &parts.headers, ip, &failure).await {
                return e.into_response();
            }
            let error = if failure.error.code == ErrorCode::Unauthorized {
                let message = failure.error.message.clone();
                challenge_error(&state.access, &parts.headers, secure, None, &message)
            } else {
                failure.error
            };
            return error.into_response();
        }
    };
    if let Err(e) = crate::audit::authenticated(&state, &parts.headers, &caller).await {
        return e.into_response();
    }
    let ctx = Ctx {
        query: query_pairs(&parts.uri),
        state,
        method: parts.method,
        headers: parts.headers,
        caller,
    };
    let result = match check_access(&ctx, endpoint, &route).await {
        Ok(()) => handle(&ctx, endpoint, route, body).await,
        Err(e) => Err(e),
    };
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(endpoint);
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The repository a route names, validated.
fn route_repository(ctx: &Ctx, route: &Route) -> ApiResult<Option<RepositoryName>> {
    let name = match route {
        Route::Base | Route::Catalog => return Ok(None),
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::UploadStart { name }
        | Route::Upload { name, .. }
        | Route::Referrers { name, .. } => name,
    };
    ctx.repository(name).map(Some)
}

/// Enforces the access `endpoint` declares. Every `/v2/` request passes here.
async fn check_access(ctx: &Ctx, endpoint: Endpoint, route: &Route) -> ApiResult<()> {
    let repository = route_repository(ctx, route)?;
    let repo = repository.as_ref().map(RepositoryName::as_str);
    let tags = route_tags(ctx, endpoint, route);
    let action = match (endpoint.access(), repo) {
        (Access::Authenticated, _) => {
            return if ctx.caller.presented_nothing() {
                Err(challenge(ctx, None, "authentication required"))
            } else {
                Ok(())
            };
        }
        (Access::Catalog, _) => Action::Catalog,
        (Access::Pull, Some(_)) if endpoint == Endpoint::ListTags => Action::ListTags,
        (Access::Pull, Some(_)) => Action::Pull,
        (Access::Push, Some(_)) => Action::Push,
        (Access::Delete, Some(_)) => Action::Delete,
        (_, None) => {
            return Err(ApiError::internal(
                "authorizing",
                &"a repository endpoint without a repository",
            ));
        }
    };
    // The token scope a challenge names, spelled out only when one is sent.
    let scope = || match (endpoint.access(), repo) {
        (Access::Catalog, _) => "registry:catalog:*".to_owned(),
        (Access::Push, Some(r)) => push_scope(ctx, endpoint, r),
        (Access::Delete, Some(r)) => format!("repository:{r}:delete"),
        (_, r) => format!("repository:{}:pull", r.unwrap_or_default()),
    };
    // A push that sets several tags needs the right for each of them: a
    // policy condition on `ward:Tag` must not be passed with one tag in the
    // path and another in `?tag=`.
    let tag_contexts: Vec<TagContext<'_>> = if tags.is_empty() {
        vec![TagContext::Absent]
    } else {
        tags.iter().map(|t| TagContext::Tag(t.as_str())).collect()
    };
    let refused = tag_contexts.into_iter().find_map(|tag| {
        match ctx.state.access.authorize(&ctx.caller, action, repo, tag) {
            Verdict::Allow => None,
            refused => Some(refused),
        }
    });
    match refused {
        None => Ok(()),
        Some(verdict) => Err(refusal(ctx, verdict, action, repo, &scope()).await?),
    }
}

/// The answer to a request `verdict` refuses: a challenge naming `scope`, or
/// a denial, audited.
pub(super) async fn refusal(
    ctx: &Ctx,
    verdict: Verdict,
    action: Action,
    repo: Option<&str>,
    scope: &str,
) -> ApiResult<ApiError> {
    Ok(match verdict {
        Verdict::Allow => ApiError::internal("authorizing", &"an allowed request was refused"),
        Verdict::Challenge { message } => challenge(ctx, Some(scope), &message),
        Verdict::InsufficientScope { message } => crate::access::insufficient_scope_error(
            &ctx.state.access,
            &ctx.headers,
            ctx.state.config.tls.is_some(),
            scope,
            &message,
        ),
        Verdict::Deny { decision } => {
            let reason = decision.to_string();
            crate::audit::denied(
                &ctx.state,
                ward_audit::EventType::AuthorizationDenied,
                &ctx.caller,
                &ctx.headers,
                action.name(),
                repo,
                &reason,
            )
            .await?;
            ApiError::new(
                ErrorCode::Denied,
                format!(
                    "{} may not {action} {}: {reason}",
                    ctx.caller.name(),
                    repo.unwrap_or("this registry")
                ),
            )
        }
    })
}

/// The tags a manifest request names: the reference when it is a tag and,
/// for a push, the ones it sets (`manifests::push_tags`). A push whose tags
/// do not parse, or are too many, is refused by its handler before anything
/// is stored, so then the path's tag is all there is to authorize.
fn route_tags(ctx: &Ctx, endpoint: Endpoint, route: &Route) -> Vec<Tag> {
    let Route::Manifest { reference, .. } = route else {
        return Vec::new();
    };
    let Ok(reference) = Reference::parse(reference) else {
        return Vec::new();
    };
    if endpoint == Endpoint::PutManifest
        && let Ok(tags) = manifests::push_tags(ctx, &reference)
    {
        return tags;
    }
    match reference {
        Reference::Tag(t) => vec![t],
        Reference::Digest(_) => Vec::new(),
    }
}

/// The token scope a push needs. A mount also reads its source, so its
/// challenge asks for pull there too, as distribution's does: a client that
/// fetches a token for the challenged scope can then mount instead of
/// uploading (without it the mount quietly falls back to an upload).
fn push_scope(ctx: &Ctx, endpoint: Endpoint, repository: &str) -> String {
    let mut scope = format!("repository:{repository}:pull,push");
    let source = (endpoint == Endpoint::StartUpload)
        .then(|| crate::http::query_value(&ctx.query, "from"))
        .flatten()
        .filter(|_| crate::http::query_value(&ctx.query, "mount").is_some())
        .filter(|from| *from != repository && ctx.repository(from).is_ok());
    if let Some(from) = source {
        scope.push_str(&format!(" repository:{from}:pull"));
    }
    scope
}

fn challenge(ctx: &Ctx, scope: Option<&str>, message: &str) -> ApiError {
    challenge_error(
        &ctx.state.access,
        &ctx.headers,
        ctx.state.config.tls.is_some(),
        scope,
        message,
    )
}

async fn handle(ctx: &Ctx, endpoint: Endpoint, route: Route, body: Body) -> ApiResult<Response> {
    match (endpoint, route) {
        (Endpoint::Ping, _) => Ok(listing::ping()),
        (Endpoint::Catalog, _) => listing::catalog(ctx).await,
        (Endpoint::ListTags, Route::Tags { name }) => listing::tags(ctx, &name).await,
        (Endpoint::Referrers, Route::Referrers { name, digest }) => {
            listing::referrers(ctx, &name, &digest).await
        }
        (Endpoint::GetManifest | Endpoint::HeadManifest, Route::Manifest { name, reference }) => {
            manifests::get(ctx, &name, &reference).await
        }
        (Endpoint::PutManifest, Route::Manifest { name, reference }) => {
            manifests::put(ctx, &name, &reference, body).await
        }
        (Endpoint::DeleteManifest, Route::Manifest { name, reference }) => {
            manifests::delete(ctx, &name, &reference).await
        }
        (Endpoint::GetBlob | Endpoint::HeadBlob, Route::Blob { name, digest }) => {
            blobs::get(ctx, &name, &digest).await
        }
        (Endpoint::DeleteBlob, Route::Blob { name, digest }) => {
            blobs::delete(ctx, &name, &digest).await
        }
        (Endpoint::StartUpload, Route::UploadStart { name }) => {
            uploads::start(ctx, &name, body).await
        }
        (Endpoint::UploadStatus, Route::Upload { name, id }) => {
            uploads::status(ctx, &name, &id).await
        }
        (Endpoint::PatchUpload, Route::Upload { name, id }) => {
            uploads::patch(ctx, &name, &id, body).await
        }
        (Endpoint::FinishUpload, Route::Upload { name, id }) => {
            uploads::finish(ctx, &name, &id, body).await
        }
        (Endpoint::CancelUpload, Route::Upload { name, id }) => {
            uploads::cancel(ctx, &name, &id).await
        }
        (e, r) => Err(ApiError::internal(
            "routing a request",
            &format!("endpoint {e:?} resolved for route {r:?}"),
        )),
    }
}

/// Refuses deletion when the registry has it switched off.
pub(crate) fn require_delete_enabled(ctx: &Ctx) -> ApiResult<()> {
    if ctx.state.config.delete_enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Unsupported,
            "deletion is disabled on this registry; an operator can enable it with delete_enabled = true",
        ))
    }
}

/// An empty response with a status and headers.
pub(crate) fn empty(status: axum::http::StatusCode, headers: &[(&str, String)]) -> Response {
    let mut response = (status, Body::empty()).into_response();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}
