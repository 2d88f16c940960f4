//! Users, groups, robots, access tokens, role bindings, policies and
//! immutability rules. Every change is validated with `ward-auth` before it
//! is stored, audited, and visible to this server's decisions at once.

use std::str::FromStr;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ward_audit::EventType;
use ward_auth::ImmutabilityRule;
use ward_auth::SecretString;
use ward_auth::identity::{Principal, PrincipalKind};
use ward_auth::password::{SecretKind, generate_secret};
use ward_auth::pattern::{RepoPattern, is_valid_repository_name};
use ward_auth::policy::{Action, Policy, Role, RoleBinding, Subject, TagContext};
use ward_core::ErrorCode;
use ward_store::meta::{NewAccessToken, NewRobot, NewUser, StoredRoleBinding};
use ward_store::now_ms;

use super::{changed, json, json_body};
use crate::access::{AuthMethod, Caller};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest JSON body a management call accepts.
const BODY_BYTES_MAX: usize = 256 * 1024;
/// Most items a listing returns.
const LIST_MAX: u32 = 1000;
/// Most access tokens one user may hold.
const TOKENS_PER_USER_MAX: u32 = 50;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Refuses a caller who did not sign in with their password in this request:
/// an access token must not outlive itself by minting another, or take over
/// its account by changing the password.
fn require_password_sign_in(caller: &Caller, doing: &str) -> ApiResult<()> {
    if caller.method == AuthMethod::Password {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Denied,
        format!(
            "to {doing}, sign in with your password (Basic), not with {}",
            caller.method.as_str().replace('_', " ")
        ),
    ))
}

fn not_found(what: &str, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("{what} {name:?} does not exist"),
    )
}

/// Validates a user, group or robot name: the repository-name alphabet, one path segment.
fn check_name(kind: &str, name: &str) -> ApiResult<()> {
    if name.len() <= 64 && !name.contains('/') && is_valid_repository_name(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid {kind} name {name:?}: use 1 to 64 lowercase letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Records an administrative change.
async fn changed_audited(
    state: &AppState,
    caller: &Caller,
    kind: EventType,
    action: &str,
    target: &str,
) -> ApiResult<()> {
    let headers = axum::http::HeaderMap::new();
    let event = audit::event(kind, Some(caller), &headers)
        .action(action)
        .target(target);
    audit::record(state, event).await?;
    changed(state).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    name: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    password: Option<String>,
    disabled: Option<bool>,
}

pub(super) async fn list_users(State(state): State<AppState>) -> ApiResult<Response> {
    let page = state.meta.list_users(None, LIST_MAX).await?;
    let users: Vec<Value> = page
        .items
        .iter()
        .map(|u| json!({"name": u.name, "disabled": u.disabled, "groups": u.groups, "created_at_ms": u.created_at_ms}))
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"users": users, "more": page.more}),
    ))
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let mut body: NewUserBody = json_body(body, BODY_BYTES_MAX).await?;
    body.name = body.name.to_ascii_lowercase();
    check_name("user", &body.name)?;
    let hash = state
        .access
        .new_password_hash(&SecretString::from(body.password))?;
    state
        .meta
        .create_user(&NewUser {
            name: &body.name,
            password_hash: hash.as_phc(),
        })
        .await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "create_user",
        &body.name,
    )
    .await?;
    Ok(json(StatusCode::CREATED, json!({"name": body.name})))
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let patch: UserPatch = json_body(body, BODY_BYTES_MAX).await?;
    if let Some(password) = patch.password {
        let hash = state
            .access
            .new_password_hash(&SecretString::from(password))?;
        state
            .meta
            .set_user_password_hash(&name, hash.as_phc())
            .await?;
        changed_audited(
            &state,
            &caller,
            EventType::UserChanged,
            "set_password",
            &name,
        )
        .await?;
    }
    if let Some(disabled) = patch.disabled {
        state.meta.set_user_disabled(&name, disabled).await?;
        let action = if disabled {
            "disable_user"
        } else {
            "enable_user"
        };
        changed_audited(&state, &caller, EventType::UserChanged, action, &name).await?;
    }
    Ok(json(StatusCode::OK, json!({"name": name})))
}

pub(super) async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if name == caller.principal.name && caller.principal.kind == PrincipalKind::User {
        return Err(invalid("you cannot delete your own account"));
    }
    if !state.meta.delete_user(&name).await? {
        return Err(not_found("user", &name));
    }
    remove_bindings_of(&state, &format!("user:{name}")).await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "delete_user",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"deleted": name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    password: String,
}

pub(super) async fn change_own_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    if caller.principal.kind != PrincipalKind::User {
        return Err(invalid("only users have passwords"));
    }
    require_password_sign_in(&caller, "change your password")?;
    let body: PasswordBody = json_body(body, BODY_BYTES_MAX).await?;
    let hash = state
        .access
        .new_password_hash(&SecretString::from(body.password))?;
    state
        .meta
        .set_user_password_hash(&caller.principal.name, hash.as_phc())
        .await?;
    let name = caller.principal.name.clone();
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "set_password",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"name": name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NameBody {
    name: String,
}

pub(super) async fn list_groups(State(state): State<AppState>) -> ApiResult<Response> {
    let page = state.meta.list_groups(None, LIST_MAX).await?;
    let groups: Vec<Value> = page
        .items
        .iter()
        .map(|g| json!({"name": g.name, "members": g.members}))
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"groups": groups, "more": page.more}),
    ))
}

pub(super) async fn create_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let body: NameBody = json_body(body, BODY_BYTES_MAX).await?;
    check_name("group", &body.name)?;
    state.meta.create_group(&body.name).await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "create_group",
        &body.name,
    )
    .await?;
    Ok(json(StatusCode::CREATED, json!({"name": body.name})))
}

pub(super) async fn delete_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !state.meta.delete_group(&name).await? {
        return Err(not_found("group", &name));
    }
    remove_bindings_of(&state, &format!("group:{name}")).await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "delete_group",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"deleted": name})))
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.meta.add_group_member(&group, &user).await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "add_group_member",
        &format!("{group}/{user}"),
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"group": group, "user": user})))
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    if !state.meta.remove_group_member(&group, &user).await? {
        return Err(not_found("membership", &format!("{group}/{user}")));
    }
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "remove_group_member",
        &format!("{group}/{user}"),
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"group": group, "user": user})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRobotBody {
    name: String,
    #[serde(default)]
    description: String,
    /// Role bindings to create with the robot: `[{"role": "write", "repositories": "ci/**"}]`.
    #[serde(default)]
    grants: Vec<Grant>,
    /// Days until the robot stops working; none means it does not expire.
    expires_in_days: Option<u32>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct Grant {
    role: String,
    repositories: String,
}

pub(super) async fn list_robots(State(state): State<AppState>) -> ApiResult<Response> {
    let page = state.meta.list_robots(None, LIST_MAX).await?;
    let robots: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "description": r.description,
                "grants": serde_json::from_str::<Value>(&r.scopes_json).unwrap_or(Value::Null),
                "expires_at_ms": r.expires_at_ms, "revoked_at_ms": r.revoked_at_ms,
                "last_used_at_ms": r.last_used_at_ms, "created_by": r.created_by,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"robots": robots, "more": page.more}),
    ))
}

/// Creates a robot and its role bindings; its secret is shown in this response only.
pub(super) async fn create_robot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body: NewRobotBody = json_body(body, BODY_BYTES_MAX).await?;
    check_name("robot", &body.name)?;
    // Grants are role bindings: whoever may only manage robots must not
    // hand out roles through one (an admin robot, say).
    if !body.grants.is_empty() {
        super::authorize(&state, &caller, &headers, Action::ManageRoles, None).await?;
    }
    let mut bindings = Vec::new();
    for g in &body.grants {
        bindings.push(validated_binding(
            &format!("robot:{}", body.name),
            &g.role,
            &g.repositories,
        )?);
    }
    let secret = generate_secret(SecretKind::Robot)
        .map_err(|e| ApiError::internal("generating a secret", &e))?;
    let scopes = serde_json::to_string(&body.grants)
        .map_err(|e| ApiError::internal("encoding grants", &e))?;
    let digest = secret.digest().to_string();
    let expires_at_ms = body
        .expires_in_days
        .map(|d| now_ms() + i64::from(d) * 86_400_000);
    state
        .meta
        .create_robot(&NewRobot {
            name: &body.name,
            secret_digest: &digest,
            description: &body.description,
            scopes_json: &scopes,
            expires_at_ms,
            created_by: &caller.principal.name,
        })
        .await?;
    for b in &bindings {
        state.meta.add_role_binding(b).await?;
    }
    changed_audited(
        &state,
        &caller,
        EventType::RobotChanged,
        "create_robot",
        &body.name,
    )
    .await?;
    Ok(json(
        StatusCode::CREATED,
        json!({"name": body.name, "secret": secret.value.expose(), "expires_at_ms": expires_at_ms,
               "note": "store this secret now: Ward keeps only its digest and cannot show it again"}),
    ))
}

pub(super) async fn revoke_robot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !state.meta.revoke_robot(&name, now_ms()).await? {
        return Err(not_found("robot", &name));
    }
    changed_audited(
        &state,
        &caller,
        EventType::RobotChanged,
        "revoke_robot",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"revoked": name})))
}

pub(super) async fn delete_robot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !state.meta.delete_robot(&name).await? {
        return Err(not_found("robot", &name));
    }
    remove_bindings_of(&state, &format!("robot:{name}")).await?;
    changed_audited(
        &state,
        &caller,
        EventType::RobotChanged,
        "delete_robot",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"deleted": name})))
}

/// Removes the role bindings of a deleted identity, so a new account of the
/// same name does not inherit them.
async fn remove_bindings_of(state: &AppState, subject: &str) -> ApiResult<()> {
    for b in state
        .meta
        .role_bindings()
        .await?
        .into_iter()
        .filter(|b| b.subject == subject)
    {
        state.meta.remove_role_binding(&b).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenBody {
    name: String,
    #[serde(default)]
    description: String,
    expires_in_days: Option<u32>,
}

fn own_user(caller: &Caller) -> ApiResult<&str> {
    if caller.principal.kind == PrincipalKind::User {
        Ok(&caller.principal.name)
    } else {
        Err(invalid(
            "access tokens belong to users; robots use their own secret",
        ))
    }
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Response> {
    let tokens: Vec<Value> = state
        .meta
        .access_tokens(own_user(&caller)?)
        .await?
        .iter()
        .map(|t| {
            json!({"name": t.name, "description": t.description, "expires_at_ms": t.expires_at_ms,
                         "revoked_at_ms": t.revoked_at_ms, "last_used_at_ms": t.last_used_at_ms})
        })
        .collect();
    Ok(json(StatusCode::OK, json!({"tokens": tokens})))
}

/// Creates a personal access token for the caller; shown in this response only.
pub(super) async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let user = own_user(&caller)?.to_owned();
    require_password_sign_in(&caller, "create an access token")?;
    let body: NewTokenBody = json_body(body, BODY_BYTES_MAX).await?;
    check_name("token", &body.name)?;
    let secret = generate_secret(SecretKind::PersonalAccessToken)
        .map_err(|e| ApiError::internal("generating a secret", &e))?;
    let digest = secret.digest().to_string();
    let expires_at_ms = body
        .expires_in_days
        .map(|d| now_ms() + i64::from(d) * 86_400_000);
    let token = NewAccessToken {
        user: &user,
        name: &body.name,
        secret_digest: &digest,
        description: &body.description,
        scopes_json: "[]",
        expires_at_ms,
    };
    state
        .meta
        .create_access_token(&token, TOKENS_PER_USER_MAX)
        .await?;
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "create_access_token",
        &format!("{user}/{}", body.name),
    )
    .await?;
    Ok(json(
        StatusCode::CREATED,
        json!({"name": body.name, "user": user, "secret": secret.value.expose(), "expires_at_ms": expires_at_ms,
               "note": "store this token now: Ward keeps only its digest and cannot show it again"}),
    ))
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let user = own_user(&caller)?.to_owned();
    if !state
        .meta
        .revoke_access_token(&user, &name, now_ms())
        .await?
    {
        return Err(not_found("access token", &name));
    }
    changed_audited(
        &state,
        &caller,
        EventType::UserChanged,
        "revoke_access_token",
        &format!("{user}/{name}"),
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"revoked": name})))
}

/// A role binding checked by `ward-auth`, in its stored form.
fn validated_binding(
    subject: &str,
    role: &str,
    repositories: &str,
) -> ApiResult<StoredRoleBinding> {
    let s = Subject::from_str(subject).map_err(|e| invalid(e.to_string()))?;
    let r = Role::from_str(role).map_err(|e| invalid(e.to_string()))?;
    let p = RepoPattern::new(repositories).map_err(|e| invalid(e.to_string()))?;
    let b = RoleBinding::new(s, r, p).map_err(|e| invalid(e.to_string()))?;
    Ok(StoredRoleBinding {
        subject: subject.to_owned(),
        role: b.role().as_str().to_owned(),
        repositories: b.repositories().as_str().to_owned(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BindingBody {
    subject: String,
    role: String,
    repositories: String,
}

pub(super) async fn list_bindings(State(state): State<AppState>) -> ApiResult<Response> {
    let bindings: Vec<Value> = state
        .meta
        .role_bindings()
        .await?
        .iter()
        .map(|b| json!({"subject": b.subject, "role": b.role, "repositories": b.repositories}))
        .collect();
    Ok(json(StatusCode::OK, json!({"role_bindings": bindings})))
}

pub(super) async fn add_binding(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let body: BindingBody = json_body(body, BODY_BYTES_MAX).await?;
    let b = validated_binding(&body.subject, &body.role, &body.repositories)?;
    state.meta.add_role_binding(&b).await?;
    let target = format!("{} {} {}", b.subject, b.role, b.repositories);
    changed_audited(
        &state,
        &caller,
        EventType::RoleChanged,
        "add_role_binding",
        &target,
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        json!({"subject": b.subject, "role": b.role, "repositories": b.repositories}),
    ))
}

pub(super) async fn remove_binding(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let body: BindingBody = json_body(body, BODY_BYTES_MAX).await?;
    let b = validated_binding(&body.subject, &body.role, &body.repositories)?;
    if !state.meta.remove_role_binding(&b).await? {
        return Err(not_found(
            "role binding",
            &format!("{} {} {}", b.subject, b.role, b.repositories),
        ));
    }
    let target = format!("{} {} {}", b.subject, b.role, b.repositories);
    changed_audited(
        &state,
        &caller,
        EventType::RoleChanged,
        "remove_role_binding",
        &target,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"removed": target})))
}

pub(super) async fn list_policies(State(state): State<AppState>) -> ApiResult<Response> {
    let policies: Vec<Value> = state
        .meta
        .policies()
        .await?
        .iter()
        .map(|p| json!({"name": p.name, "document": serde_json::from_str::<Value>(&p.document_json).unwrap_or(Value::Null)}))
        .collect();
    Ok(json(StatusCode::OK, json!({"policies": policies})))
}

pub(super) async fn get_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let p = state
        .meta
        .policy(&name)
        .await?
        .ok_or_else(|| not_found("policy", &name))?;
    let document: Value = serde_json::from_str(&p.document_json)
        .map_err(|e| ApiError::internal("reading a policy", &e))?;
    Ok(json(StatusCode::OK, document))
}

/// Stores a policy document after `ward-auth` validated every statement.
pub(super) async fn put_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    check_name("policy", &name)?;
    let document: Value = json_body(body, BODY_BYTES_MAX).await?;
    let text = document.to_string();
    Policy::from_json(&name, &text).map_err(|e| invalid(e.to_string()))?;
    let outcome = state.meta.put_policy(&name, &text).await?;
    changed_audited(
        &state,
        &caller,
        EventType::PolicyChanged,
        "put_policy",
        &name,
    )
    .await?;
    let status = if matches!(outcome, ward_store::meta::PutOutcome::Created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, json!({"name": name})))
}

pub(super) async fn delete_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !state.meta.delete_policy(&name).await? {
        return Err(not_found("policy", &name));
    }
    changed_audited(
        &state,
        &caller,
        EventType::PolicyChanged,
        "delete_policy",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"deleted": name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplainBody {
    /// `user:alice`, `robot:ci` or `anonymous`.
    principal: String,
    action: String,
    repository: Option<String>,
    tag: Option<String>,
    source_ip: Option<std::net::IpAddr>,
}

/// The decision a request would get, and the statement or role behind it.
pub(super) async fn explain(State(state): State<AppState>, body: Body) -> ApiResult<Response> {
    let body: ExplainBody = json_body(body, BODY_BYTES_MAX).await?;
    let action = Action::from_str(&body.action).map_err(|e| invalid(e.to_string()))?;
    let snapshot = state.access.snapshot();
    let (kind, name) = match body.principal.split_once(':') {
        Some(("user", n)) => (PrincipalKind::User, n),
        Some(("robot", n)) => (PrincipalKind::Robot, n),
        None if body.principal == "anonymous" => (PrincipalKind::Anonymous, ""),
        _ => {
            return Err(invalid(
                "principal must be user:<name>, robot:<name> or anonymous",
            ));
        }
    };
    let principal = match kind {
        PrincipalKind::User => Principal::user(
            name,
            snapshot
                .users
                .get(name)
                .map(|u| u.groups.clone())
                .unwrap_or_default(),
        ),
        PrincipalKind::Robot => Principal::robot(name),
        PrincipalKind::Anonymous => Principal::anonymous(),
    };
    let caller = Caller::detached(principal, body.source_ip);
    let tag = body
        .tag
        .as_deref()
        .map_or(TagContext::Absent, TagContext::Tag);
    let decision = state
        .access
        .decide(&snapshot, &caller, action, body.repository.as_deref(), tag);
    Ok(json(
        StatusCode::OK,
        json!({"allowed": decision.is_allowed(), "explanation": decision.to_string(), "decision": decision}),
    ))
}

pub(super) async fn list_rules(State(state): State<AppState>) -> ApiResult<Response> {
    let rules: Vec<Value> = state
        .meta
        .immutability_rules()
        .await?
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.rule_json).unwrap_or(Value::Null))
        .collect();
    Ok(json(StatusCode::OK, json!({"rules": rules})))
}

/// Stores an immutability rule after `ward-auth` validated it; its name comes from the path.
pub(super) async fn put_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    check_name("rule", &name)?;
    let mut rule: Value = json_body(body, BODY_BYTES_MAX).await?;
    if let Some(obj) = rule.as_object_mut() {
        obj.insert("name".into(), Value::String(name.clone()));
    }
    let parsed: ImmutabilityRule =
        serde_json::from_value(rule.clone()).map_err(|e| invalid(e.to_string()))?;
    ward_auth::ImmutabilityRules::new(vec![parsed]).map_err(|e| invalid(e.to_string()))?;
    let outcome = state
        .meta
        .put_immutability_rule(&name, &rule.to_string())
        .await?;
    changed_audited(
        &state,
        &caller,
        EventType::SettingChanged,
        "put_immutability_rule",
        &name,
    )
    .await?;
    let status = if matches!(outcome, ward_store::meta::PutOutcome::Created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, json!({"name": name})))
}

pub(super) async fn delete_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !state.meta.delete_immutability_rule(&name).await? {
        return Err(not_found("immutability rule", &name));
    }
    changed_audited(
        &state,
        &caller,
        EventType::SettingChanged,
        "delete_immutability_rule",
        &name,
    )
    .await?;
    Ok(json(StatusCode::OK, json!({"deleted": name})))
}

/// `GET /api/v1/trust-policy`: the trust policy the signature gates enforce.
pub(super) async fn get_trust_policy(State(state): State<AppState>) -> ApiResult<Response> {
    let (policy, updated_at_ms) = match state.meta.trust_policy().await? {
        Some((document, at)) => (
            serde_json::from_str::<Value>(&document).unwrap_or(Value::Null),
            Some(at),
        ),
        None => (json!({"keys": [], "trust_roots": [], "rules": []}), None),
    };
    let revision = state
        .access
        .snapshot()
        .trust
        .as_ref()
        .map(|p| p.revision().to_string());
    Ok(json(
        StatusCode::OK,
        json!({"policy": policy, "revision": revision, "updated_at_ms": updated_at_ms}),
    ))
}

/// `PUT /api/v1/trust-policy`: replaces the whole trust policy (keys, trust
/// roots, rules) after compiling it, so a policy that cannot be enforced is
/// refused before it is stored. Revoking a key is `"revoked": true` on it.
pub(super) async fn put_trust_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    let document: Value = json_body(body, TRUST_POLICY_BYTES_MAX).await?;
    let policy: ward_sign::policy::TrustPolicy =
        serde_json::from_value(document.clone()).map_err(|e| invalid(e.to_string()))?;
    let compiled = policy.compile().map_err(|e| invalid(e.to_string()))?;
    state.meta.put_trust_policy(&document.to_string()).await?;
    changed_audited(
        &state,
        &caller,
        EventType::TrustPolicyChanged,
        "put_trust_policy",
        &compiled.revision().to_string(),
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        json!({"revision": compiled.revision().to_string(), "rules": policy.rules.len(), "keys": policy.keys.len()}),
    ))
}

/// Largest trust policy document accepted (trusted roots carry certificates).
pub const TRUST_POLICY_BYTES_MAX: usize = 4 * 1024 * 1024;
