//! The Docker Registry v2 token endpoint, `/token`.
//!
//! `GET /token?service=&scope=...&offline_token=true` with Basic credentials
//! (or none, for public pulls) answers an access token whose `access` claim is
//! the intersection of what was asked and what the caller may do; with
//! `offline_token=true` it adds a refresh token. `POST /token` takes the OAuth2
//! form (`grant_type=password` or `refresh_token`) that docker uses to refresh.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use ward_core::ErrorCode;

use crate::access::{AuthFailure, AuthMethod, Caller};
use crate::error::{ApiError, ApiResult};
use crate::http::{query_pairs, query_value, query_values};
use crate::serve::ClientAddr;
use crate::state::AppState;

/// Largest form body accepted by `POST /token`.
const FORM_BYTES_MAX: usize = 16 * 1024;

/// `GET`/`POST /token`.
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, request: Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let ip = parts.extensions.get::<ClientAddr>().map(|a| a.0.ip());
    let secure = state.config.tls.is_some();
    let mut params = query_pairs(&parts.uri);
    if parts.method == Method::POST {
        let bytes = http_body_util::Limited::new(body, FORM_BYTES_MAX)
            .collect()
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::Unsupported,
                    "token request body too large or unreadable",
                )
            })?
            .to_bytes();
        params
            .extend(form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())));
    } else if parts.method != Method::GET {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "use GET or POST on /token",
        ));
    }
    let service = query_value(&params, "service");
    if service.is_some_and(|s| s != state.access.config().service) {
        return Err(ApiError::new(
            ErrorCode::Denied,
            format!(
                "this registry issues tokens for service {:?}",
                state.access.config().service
            ),
        ));
    }
    let caller = caller(state, &parts.headers, &params, ip, secure).await;
    let caller = match caller {
        Ok(c) => c,
        Err(failure) => {
            crate::audit::auth_failure(state, &parts.headers, ip, &failure).await?;
            return Err(failure.error);
        }
    };
    crate::audit::authenticated(state, &parts.headers, &caller).await?;
    let scope: Vec<&str> = query_values(&params, "scope").collect();
    let offline = query_value(&params, "offline_token") == Some("true")
        || query_value(&params, "access_type") == Some("offline");
    let response = state.access.issue(&caller, &scope.join(" "), offline)?;
    crate::audit::token_issued(state, &parts.headers, &caller, &scope.join(" ")).await?;
    let mut r = (StatusCode::OK, axum::Json(response)).into_response();
    r.headers_mut().insert(
        "cache-control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    params: &[(String, String)],
    ip: Option<std::net::IpAddr>,
    secure: bool,
) -> Result<Caller, AuthFailure> {
    match query_value(params, "grant_type") {
        Some("refresh_token") => {
            let token = query_value(params, "refresh_token").unwrap_or_default();
            state
                .access
                .refresh_caller(&state.meta, token, ip, secure)
                .await
        }
        Some("password") => {
            let user = query_value(params, "username").unwrap_or_default();
            let password = query_value(params, "password").unwrap_or_default();
            let mut with_basic = headers.clone();
            let encoded = base64_encode(format!("{user}:{password}").as_bytes());
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("Basic {encoded}")) {
                with_basic.insert(axum::http::header::AUTHORIZATION, v);
            }
            state
                .access
                .authenticate(&state.meta, &with_basic, ip, secure)
                .await
        }
        _ => {
            let caller = state
                .access
                .authenticate(&state.meta, headers, ip, secure)
                .await?;
            // A token is a ceiling on what its holder may do, for minutes: it
            // must not buy a new token, let alone a refresh token for a month.
            if caller.method == AuthMethod::Bearer {
                return Err(AuthFailure {
                    error: ApiError::new(
                        ErrorCode::Unauthorized,
                        "a registry token cannot be exchanged for another: present Basic \
                         credentials (password, robot secret or access token) or a refresh token",
                    ),
                    username: Some(caller.principal.name),
                    method: AuthMethod::Bearer,
                });
            }
            Ok(caller)
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
