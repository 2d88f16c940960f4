//! The server's one small call into the audit log.
//!
//! Handlers build an event with [`event`] (which fills in who, how, from where
//! and the request id) and [`record`] it. Recording returns only once the event
//! is durable, and a failure to record fails the request: Ward never does
//! something security-relevant it could not write down.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use ward_audit::{AuditEvent, EventType, Outcome};

use crate::access::{AuthFailure, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// An event of `kind` about this request, with the caller's identity, method,
/// address, user agent and request id filled in.
pub fn event(kind: EventType, caller: Option<&Caller>, headers: &HeaderMap) -> AuditEvent {
    let mut e = AuditEvent::new(kind);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| truncate(v, 256).to_owned())
    };
    let mut user_agent = header(header::USER_AGENT.as_str());
    let mut request_id = header("x-request-id");
    if let Some(c) = caller {
        e = e.user(c.name()).auth_method(c.method.as_str());
        if let Some(ip) = c.ip {
            e = e.ip(ip);
        }
        user_agent = user_agent.or_else(|| c.user_agent.clone());
        request_id = request_id.or_else(|| c.request_id.clone());
    }
    if let Some(ua) = user_agent {
        e = e.user_agent(ua);
    }
    if let Some(id) = request_id {
        e = e.request_id(id);
    }
    e
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Records `event`, durably, or fails the request.
pub async fn record(state: &AppState, event: AuditEvent) -> ApiResult<()> {
    if !state.config.audit.enabled {
        return Ok(());
    }
    state
        .audit
        .log()
        .record(event)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::internal("recording an audit event", &e))
}

/// A failed authentication.
pub async fn auth_failure(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    failure: &AuthFailure,
) -> ApiResult<()> {
    let mut e = event(EventType::AuthFailure, None, headers)
        .auth_method(failure.method.as_str())
        .reason(failure.error.message.clone());
    if let Some(u) = &failure.username {
        e = e.user(u.as_str());
    }
    if let Some(ip) = ip {
        e = e.ip(ip);
    }
    record(state, e).await
}

/// A successful sign-in: recorded when credentials are checked against the
/// store, not for every request that reuses them (a bearer token, or Basic
/// credentials remembered for `auth.password_cache_secs`).
pub async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
) -> ApiResult<()> {
    if !caller.verified_now {
        return Ok(());
    }
    record(state, event(EventType::AuthSuccess, Some(caller), headers)).await
}

/// A token handed out at the token endpoint.
pub async fn token_issued(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    scope: &str,
) -> ApiResult<()> {
    let e =
        event(EventType::TokenIssued, Some(caller), headers).detail("scope", truncate(scope, 1024));
    record(state, e).await
}

/// A request refused by authorization, immutability or a gate.
pub async fn denied(
    state: &AppState,
    kind: EventType,
    caller: &Caller,
    headers: &HeaderMap,
    action: &str,
    repository: Option<&str>,
    reason: &str,
) -> ApiResult<()> {
    let mut e = event(kind, Some(caller), headers)
        .action(action)
        .outcome(Outcome::Denied)
        .reason(reason);
    if let Some(r) = repository {
        e = e.repository(r);
    }
    record(state, e).await
}
