//! The management API under `/api/v1/`, described by `openapi.json`.
//!
//! Every route is one entry of [`ROUTES`], which names its method, path and
//! the [`ApiAccess`] it requires; [`router`] builds the app from that table
//! alone and wraps each route in the check of its access, so a route cannot
//! exist without one. Management calls take Basic credentials (a password,
//! a robot secret or a personal access token): registry tokens never carry
//! administrative rights.

mod admin;
mod audit;
mod repos;
mod scans;

use axum::Router;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use ward_auth::identity::PrincipalKind;
use ward_auth::policy::{Action, TagContext};
use ward_core::ErrorCode;

use crate::access::{AuthMethod, Caller, Verdict};
use crate::error::{ApiError, ApiResult};
use crate::serve::ClientAddr;
use crate::state::AppState;

/// What a management route requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiAccess {
    /// Any signed-in caller (acting on their own things).
    SignedIn,
    /// A registry-wide administrative action.
    Registry(Action),
    /// An administrative action on the repository named by the `name` path parameter.
    Repository(Action),
    /// Anyone: only the API description itself.
    Public,
}

/// One management route.
pub struct ApiRoute {
    /// HTTP method.
    pub method: Method,
    /// Path, in axum's syntax.
    pub path: &'static str,
    /// What it requires.
    pub access: ApiAccess,
}

macro_rules! routes {
    ($( $method:ident $path:literal => $access:expr, $handler:path; )*) => {
        /// Every management route, with the access it requires.
        pub static ROUTES: std::sync::LazyLock<Vec<ApiRoute>> = std::sync::LazyLock::new(|| vec![
            $( ApiRoute { method: Method::$method, path: $path, access: $access }, )*
        ]);

        fn add_routes(mut router: Router<AppState>, state: &AppState) -> Router<AppState> {
            $(
                router = router.route(
                    $path,
                    on(MethodFilter::$method, $handler).route_layer(middleware::from_fn_with_state(
                        (state.clone(), $access),
                        require,
                    )),
                );
            )*
            router
        }
    };
}

use ApiAccess::{Public, Registry, Repository, SignedIn};

routes! {
    GET "/api/v1/openapi.json" => Public, openapi;
    GET "/api/v1/users" => Registry(Action::ManageUsers), admin::list_users;
    POST "/api/v1/users" => Registry(Action::ManageUsers), admin::create_user;
    PATCH "/api/v1/users/{name}" => Registry(Action::ManageUsers), admin::update_user;
    DELETE "/api/v1/users/{name}" => Registry(Action::ManageUsers), admin::delete_user;
    PUT "/api/v1/me/password" => SignedIn, admin::change_own_password;
    GET "/api/v1/groups" => Registry(Action::ManageGroups), admin::list_groups;
    POST "/api/v1/groups" => Registry(Action::ManageGroups), admin::create_group;
    DELETE "/api/v1/groups/{name}" => Registry(Action::ManageGroups), admin::delete_group;
    PUT "/api/v1/groups/{name}/members/{user}" => Registry(Action::ManageGroups), admin::add_member;
    DELETE "/api/v1/groups/{name}/members/{user}" => Registry(Action::ManageGroups), admin::remove_member;
    GET "/api/v1/robots" => Registry(Action::ManageRobots), admin::list_robots;
    POST "/api/v1/robots" => Registry(Action::ManageRobots), admin::create_robot;
    POST "/api/v1/robots/{name}/revoke" => Registry(Action::ManageRobots), admin::revoke_robot;
    DELETE "/api/v1/robots/{name}" => Registry(Action::ManageRobots), admin::delete_robot;
    GET "/api/v1/tokens" => SignedIn, admin::list_tokens;
    POST "/api/v1/tokens" => SignedIn, admin::create_token;
    DELETE "/api/v1/tokens/{name}" => SignedIn, admin::revoke_token;
    GET "/api/v1/role-bindings" => Registry(Action::ManageRoles), admin::list_bindings;
    POST "/api/v1/role-bindings" => Registry(Action::ManageRoles), admin::add_binding;
    DELETE "/api/v1/role-bindings" => Registry(Action::ManageRoles), admin::remove_binding;
    GET "/api/v1/policies" => Registry(Action::ManagePolicies), admin::list_policies;
    GET "/api/v1/policies/{name}" => Registry(Action::ManagePolicies), admin::get_policy;
    PUT "/api/v1/policies/{name}" => Registry(Action::ManagePolicies), admin::put_policy;
    DELETE "/api/v1/policies/{name}" => Registry(Action::ManagePolicies), admin::delete_policy;
    POST "/api/v1/policy/explain" => Registry(Action::ManagePolicies), admin::explain;
    GET "/api/v1/immutability-rules" => Registry(Action::ManageImmutability), admin::list_rules;
    PUT "/api/v1/immutability-rules/{name}" => Registry(Action::ManageImmutability), admin::put_rule;
    DELETE "/api/v1/immutability-rules/{name}" => Registry(Action::ManageImmutability), admin::delete_rule;
    GET "/api/v1/trust-policy" => Registry(Action::ManageTrust), admin::get_trust_policy;
    PUT "/api/v1/trust-policy" => Registry(Action::ManageTrust), admin::put_trust_policy;
    GET "/api/v1/repositories/{*name}" => Repository(Action::ManageRepositories), repos::get_settings;
    PUT "/api/v1/repositories/{*name}" => Repository(Action::ManageRepositories), repos::put_settings;
    GET "/api/v1/scans/{digest}" => Registry(Action::ManageScans), scans::get_scan;
    POST "/api/v1/scans/{digest}" => Registry(Action::ManageScans), scans::rescan;
    GET "/api/v1/scan-status/{*name}" => Repository(Action::Pull), scans::status;
    GET "/api/v1/quarantines" => Registry(Action::Quarantine), scans::list_quarantines;
    PUT "/api/v1/quarantines/{digest}" => Registry(Action::Quarantine), scans::quarantine;
    POST "/api/v1/quarantines/{digest}/release" => Registry(Action::Quarantine), scans::release;
    GET "/api/v1/audit" => Registry(Action::ReadAudit), audit::query;
    GET "/api/v1/audit/export" => Registry(Action::ReadAudit), audit::export;
    GET "/api/v1/audit/status" => Registry(Action::ReadAudit), audit::status;
    GET "/api/v1/audit/proof/inclusion" => Registry(Action::ReadAudit), audit::inclusion_proof;
    GET "/api/v1/audit/proof/consistency" => Registry(Action::ReadAudit), audit::consistency_proof;
}

/// The management routes, each behind its access check.
pub fn router(state: &AppState) -> Router<AppState> {
    add_routes(Router::new(), state)
}

/// The check every management route passes: authenticate with Basic
/// credentials, then authorize the route's declared access.
async fn require(
    State((state, access)): State<(AppState, ApiAccess)>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    if access == Public {
        return next.run(request).await;
    }
    let headers = request.headers().clone();
    let ip = request.extensions().get::<ClientAddr>().map(|a| a.0.ip());
    match check(&state, access, &params, &headers, ip).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn check(
    state: &AppState,
    access: ApiAccess,
    params: &RawPathParams,
    headers: &axum::http::HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> ApiResult<Caller> {
    let caller = match state
        .access
        .authenticate(&state.meta, headers, ip, state.config.tls.is_some())
        .await
    {
        Ok(c) => c,
        Err(failure) => {
            crate::audit::auth_failure(state, headers, ip, &failure).await?;
            return Err(basic_challenge(failure.error));
        }
    };
    crate::audit::authenticated(state, headers, &caller).await?;
    if caller.principal.kind == PrincipalKind::Anonymous {
        return Err(basic_challenge(ApiError::new(
            ErrorCode::Unauthorized,
            "sign in with Basic credentials",
        )));
    }
    if caller.method == AuthMethod::Bearer {
        return Err(basic_challenge(ApiError::new(
            ErrorCode::Unauthorized,
            "the management API takes Basic credentials (password, robot secret or access token), not registry tokens",
        )));
    }
    let (action, repository) =
        match access {
            Public | SignedIn => return Ok(caller),
            Registry(a) => (a, None),
            Repository(a) => {
                let name = params
                    .iter()
                    .find(|(k, _)| *k == "name")
                    .map(|(_, v)| v.to_owned());
                (
                    a,
                    Some(name.ok_or_else(|| {
                        ApiError::internal("authorizing", &"no repository in path")
                    })?),
                )
            }
        };
    authorize(state, &caller, headers, action, repository.as_deref()).await?;
    Ok(caller)
}

/// Whether `caller` may do `action` (on `repository`, or registry-wide):
/// a refusal is audited and answered as the management API answers them.
pub(crate) async fn authorize(
    state: &AppState,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    action: Action,
    repository: Option<&str>,
) -> ApiResult<()> {
    match state
        .access
        .authorize(caller, action, repository, TagContext::Absent)
    {
        Verdict::Allow => Ok(()),
        Verdict::Challenge { message } | Verdict::InsufficientScope { message } => Err(
            basic_challenge(ApiError::new(ErrorCode::Unauthorized, message)),
        ),
        Verdict::Deny { decision } => {
            let reason = decision.to_string();
            crate::audit::denied(
                state,
                ward_audit::EventType::AuthorizationDenied,
                caller,
                headers,
                action.name(),
                repository,
                &reason,
            )
            .await?;
            Err(ApiError::new(
                ErrorCode::Denied,
                format!("{} may not {action}: {reason}", caller.name()),
            ))
        }
    }
}

fn basic_challenge(error: ApiError) -> ApiError {
    error
        .with_status(StatusCode::UNAUTHORIZED)
        .with_header(header::WWW_AUTHENTICATE, "Basic realm=\"ward\"")
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    let mut r = (StatusCode::OK, OPENAPI).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Reads a JSON request body of at most `max` bytes.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    max: usize,
) -> ApiResult<T> {
    use http_body_util::BodyExt;
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("request body unreadable or above {max} bytes"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))
}

/// Reads a JSON request body of at most the API's default size.
pub(crate) async fn json_body_limited<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
) -> ApiResult<T> {
    json_body(body, 256 * 1024).await
}

/// Makes an API change visible to this server's decisions at once.
pub(crate) async fn changed(state: &AppState) -> ApiResult<()> {
    state
        .access
        .refresh(&state.meta)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::internal("reloading access control", &e))
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}
