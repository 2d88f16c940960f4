#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Access and refresh tokens: round trips, interop with PyJWT, and every
//! attack on the verifier built by hand (alg none, algorithm confusion,
//! tampering, wrong or unknown keys, time claims, non-canonical encodings).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use hmac::{KeyInit, Mac};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use ward_auth::identity::Principal;
use ward_auth::policy::Action;
use ward_auth::scope::ResourceActions;
use ward_auth::token::{
    AccessClaims, SigningKey, TokenConfig, TokenError, TokenIssuer, TokenKind, TokenResponse,
    TokenVerifier, VerifyingKey,
};

const KEY_PEM: &str = include_str!("fixtures/pyjwt-key.pem");
const PUBLIC_PEM: &str = include_str!("fixtures/pyjwt-key.pub.pem");
const PYJWT: &str = include_str!("fixtures/pyjwt-token.json");

/// 2026-01-01T00:00:00Z, the fixture token's `iat`.
const T0: u64 = 1_767_225_600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn config() -> TokenConfig {
    TokenConfig::new("ward-test", "registry.test")
}

fn ward_key() -> SigningKey {
    SigningKey::from_pkcs8_pem(KEY_PEM).unwrap()
}

fn raw_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_pem(KEY_PEM).unwrap()
}

fn verifier() -> TokenVerifier {
    TokenIssuer::new(ward_key(), config()).verifier([])
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Signs `header.payload` (given as JSON text) with `key`, low-S like Ward.
fn craft(header: &str, payload: &str, key: &p256::ecdsa::SigningKey) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.normalize_s().to_bytes()))
}

fn header(alg: &str, typ: &str) -> String {
    format!(
        r#"{{"alg":"{alg}","typ":"{typ}","kid":"{}"}}"#,
        ward_key().kid()
    )
}

fn claims_json(overrides: &[(&str, serde_json::Value)]) -> String {
    let mut claims = serde_json::json!({
        "iss": "ward-test", "sub": "ci", "aud": "registry.test",
        "exp": T0 + 300, "nbf": T0, "iat": T0, "jti": "j1",
        "access": [{"type": "repository", "name": "ml/fraud", "actions": ["pull"]}],
        "ward_kind": "Robot"
    });
    for (k, v) in overrides {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(*k);
        } else {
            claims[*k] = v.clone();
        }
    }
    claims.to_string()
}

fn access(name: &str, actions: &[&str]) -> Vec<ResourceActions> {
    vec![ResourceActions {
        resource_type: "repository".into(),
        name: name.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }]
}

fn err_name(e: &TokenError) -> String {
    format!("{e:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn access_token_round_trip() {
    let issuer = TokenIssuer::new(ward_key(), config());
    let ci = Principal::robot("ci");
    let issued = issuer
        .issue_access(&ci, access("ml/fraud", &["pull", "push"]), at(T0))
        .unwrap();
    assert_eq!(issued.expires_in(), Duration::from_secs(300));
    let claims = issuer
        .verifier([])
        .verify_access(issued.token.expose(), at(T0 + 10))
        .unwrap();
    assert_eq!(claims.sub, "ci");
    assert_eq!(claims.aud, "registry.test");
    assert_eq!(claims.iss, "ward-test");
    assert_eq!(claims.jti, issued.jti);
    assert_eq!(
        (claims.iat, claims.nbf, claims.exp),
        (T0 as i64, T0 as i64, T0 as i64 + 300)
    );
    assert!(claims.permits(Action::Push, Some("ml/fraud")));
    assert!(!claims.permits(Action::Delete, Some("ml/fraud")));
    assert!(!claims.permits(Action::Pull, Some("ml/other")));

    // The header is exactly {alg, typ, kid}.
    let head = issued.token.expose().split('.').next().unwrap();
    let head: serde_json::Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(head).unwrap()).unwrap();
    assert_eq!(
        head,
        serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": ward_key().kid()})
    );
    assert!(!format!("{issued:?}").contains(issued.token.expose()));
}

#[test]
fn refresh_tokens_and_access_tokens_do_not_mix() {
    let issuer = TokenIssuer::new(ward_key(), config());
    let v = issuer.verifier([]);
    let alice = Principal::user("alice", vec![]);
    let refresh = issuer
        .issue_refresh(&alice, "password:1:00", at(T0))
        .unwrap();
    let access_token = issuer.issue_access(&alice, vec![], at(T0)).unwrap();

    let claims = v
        .verify_refresh(refresh.token.expose(), at(T0 + 86_400))
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.aud.as_str()),
        ("alice", "ward-test")
    );
    assert_eq!(claims.ward_cred, "password:1:00", "bound to its credential");
    assert_eq!(refresh.expires_in(), Duration::from_secs(30 * 24 * 3600));

    let e = v.verify_access(refresh.token.expose(), at(T0)).unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::WrongType {
                expected: TokenKind::Access
            }
        ),
        "{e:?}"
    );
    let e = v
        .verify_refresh(access_token.token.expose(), at(T0))
        .unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::WrongType {
                expected: TokenKind::Refresh
            }
        ),
        "{e:?}"
    );

    // Even with a forged `typ` (a signing bug), the claim sets do not fit each other.
    let refresh_claims = r#"{"iss":"ward-test","sub":"alice","aud":"ward-test","exp":1767225900,"nbf":1767225600,"iat":1767225600,"jti":"r","ward_kind":"User"}"#;
    let as_access = craft(&header("ES256", "JWT"), refresh_claims, &raw_key());
    assert!(matches!(
        v.verify_access(&as_access, at(T0)),
        Err(TokenError::Malformed(_))
    ));
    let as_refresh = craft(
        &header("ES256", "ward-refresh+jwt"),
        &claims_json(&[("aud", "ward-test".into())]),
        &raw_key(),
    );
    assert!(matches!(
        v.verify_refresh(&as_refresh, at(T0)),
        Err(TokenError::Malformed(_))
    ));

    assert!(matches!(
        issuer.issue_refresh(&Principal::anonymous(), "", at(T0)),
        Err(TokenError::Refused(_))
    ));
}

#[test]
fn independent_implementations_agree() {
    let fixture: serde_json::Value = serde_json::from_str(PYJWT).unwrap();
    // RFC 7638 thumbprint as computed by jwcrypto.
    assert_eq!(ward_key().kid(), fixture["kid"].as_str().unwrap());
    let public = VerifyingKey::from_public_key_pem(PUBLIC_PEM).unwrap();
    assert_eq!(public.kid(), ward_key().kid());
    let jwk = serde_json::to_value(public.jwk()).unwrap();
    for member in ["kty", "crv", "x", "y", "kid"] {
        assert_eq!(jwk[member], fixture["jwk"][member], "{member}");
    }
    assert_eq!(
        public.to_public_key_pem().unwrap().trim(),
        PUBLIC_PEM.trim()
    );

    // A token signed by PyJWT verifies and reads back the same claims.
    let v = TokenVerifier::new(&config(), [public]);
    let claims = v
        .verify_access(fixture["token"].as_str().unwrap(), at(T0 + 60))
        .unwrap();
    let want: AccessClaims = serde_json::from_value(fixture["claims"].clone()).unwrap();
    assert_eq!(claims, want);
}

#[test]
fn alg_none_is_rejected() {
    let v = verifier();
    let payload = claims_json(&[]);
    for alg in ["none", "None", "NONE", ""] {
        let unsigned = format!(
            "{}.{}.",
            b64(header(alg, "JWT").as_bytes()),
            b64(payload.as_bytes())
        );
        let e = v.verify_access(&unsigned, at(T0)).unwrap_err();
        assert!(
            matches!(e, TokenError::UnsupportedAlgorithm(_)),
            "{alg}: {e:?}"
        );
        // Also with a real ES256 signature attached.
        let signed = craft(&header(alg, "JWT"), &payload, &raw_key());
        assert!(matches!(
            v.verify_access(&signed, at(T0)),
            Err(TokenError::UnsupportedAlgorithm(_))
        ));
    }
    let two_parts = format!(
        "{}.{}",
        b64(header("none", "JWT").as_bytes()),
        b64(payload.as_bytes())
    );
    assert!(matches!(
        v.verify_access(&two_parts, at(T0)),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_rejected() {
    let v = verifier();
    let public = ward_key().verifying_key().clone();
    let pem = public.to_public_key_pem().unwrap();
    let jwk = serde_json::to_string(&public.jwk()).unwrap();
    let der = Base64::decode_vec(
        &pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>(),
    )
    .unwrap();
    let secrets: [&[u8]; 4] = [pem.as_bytes(), pem.trim().as_bytes(), jwk.as_bytes(), &der];
    for alg in [
        "HS256", "HS384", "HS512", "ES384", "ES512", "RS256", "PS256", "EdDSA", "es256",
    ] {
        for secret in secrets {
            let input = format!(
                "{}.{}",
                b64(header(alg, "JWT").as_bytes()),
                b64(claims_json(&[]).as_bytes())
            );
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
            let e = v.verify_access(&token, at(T0)).unwrap_err();
            assert!(
                matches!(e, TokenError::UnsupportedAlgorithm(_)),
                "{alg}: {e:?}"
            );
        }
    }
    // An HMAC tag under an ES256 header is just a wrong-length signature.
    let input = format!(
        "{}.{}",
        b64(header("ES256", "JWT").as_bytes()),
        b64(claims_json(&[]).as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(pem.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
    assert!(matches!(
        v.verify_access(&token, at(T0)),
        Err(TokenError::BadSignature)
    ));
}

#[test]
fn tampered_tokens_are_rejected() {
    let issuer = TokenIssuer::new(ward_key(), config());
    let v = issuer.verifier([]);
    let good = issuer
        .issue_access(
            &Principal::robot("ci"),
            access("ml/fraud", &["pull"]),
            at(T0),
        )
        .unwrap();
    let good = good.token.expose();
    let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let payload = String::from_utf8(Base64UrlUnpadded::decode_vec(p).unwrap()).unwrap();
    let header_json = String::from_utf8(Base64UrlUnpadded::decode_vec(h).unwrap()).unwrap();

    let sig_bytes = Base64UrlUnpadded::decode_vec(s).unwrap();
    let swap_payload = |new: &str| format!("{h}.{}.{s}", b64(new.as_bytes()));
    let swap_header = |new: &str| format!("{}.{p}.{s}", b64(new.as_bytes()));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "sub changed",
            swap_payload(&payload.replace(r#""sub":"ci""#, r#""sub":"admin""#)),
            "BadSignature",
        ),
        (
            "push added",
            swap_payload(&payload.replace(r#"["pull"]"#, r#"["pull","push"]"#)),
            "BadSignature",
        ),
        (
            "exp extended",
            swap_payload(&payload.replace(&(T0 + 300).to_string(), &(T0 + 999_999).to_string())),
            "BadSignature",
        ),
        (
            "whitespace in payload",
            swap_payload(&format!(" {payload}")),
            "BadSignature",
        ),
        (
            "whitespace in header",
            swap_header(&format!("{header_json} ")),
            "BadSignature",
        ),
        (
            "header members reordered",
            swap_header(&format!(
                r#"{{"kid":"{}","alg":"ES256","typ":"JWT"}}"#,
                ward_key().kid()
            )),
            "BadSignature",
        ),
        (
            "typ changed",
            swap_header(&header_json.replace(r#""JWT""#, r#""ward-refresh+jwt""#)),
            "WrongType",
        ),
        (
            "signature bit flipped",
            format!("{h}.{p}.{}", flip_last_char(s)),
            "BadSignature",
        ),
        (
            "signature truncated",
            format!("{h}.{p}.{}", b64(&sig_bytes[..61])),
            "BadSignature",
        ),
        (
            "signature extended",
            format!("{h}.{p}.{}", b64(&[&sig_bytes[..], &[0]].concat())),
            "BadSignature",
        ),
        (
            "non-canonical base64",
            format!("{h}.{p}.{}", non_canonical_tail(s)),
            "Malformed",
        ),
        ("signature empty", format!("{h}.{p}."), "BadSignature"),
    ];
    for (what, token, want) in cases {
        let e = v.verify_access(&token, at(T0)).unwrap_err();
        assert_eq!(err_name(&e), want, "{what}: {e:?}");
    }
    assert!(v.verify_access(good, at(T0)).is_ok());
}

/// The last character of an 86-character encoding of 64 bytes carries 2 bits;
/// setting its 4 unused bits gives a string lenient decoders accept as the same bytes.
fn non_canonical_tail(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let last = chars.len() - 1;
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = alphabet.find(chars[last]).unwrap();
    chars[last] = alphabet.chars().nth(value | 0b0001).unwrap();
    chars.into_iter().collect()
}

fn flip_last_char(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = chars.len() - 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn keys_must_be_known_and_match() {
    let v = verifier();
    let other = p256::ecdsa::SigningKey::from_pkcs8_pem(
        &SigningKey::generate().unwrap().to_pkcs8_pem().unwrap(),
    )
    .unwrap();
    let payload = claims_json(&[]);
    // Unknown kid.
    let unknown = craft(
        &header("ES256", "JWT").replace(ward_key().kid(), "some-other-kid"),
        &payload,
        &raw_key(),
    );
    assert!(matches!(
        v.verify_access(&unknown, at(T0)),
        Err(TokenError::UnknownKey(_))
    ));
    // Missing kid.
    let missing = craft(r#"{"alg":"ES256","typ":"JWT"}"#, &payload, &raw_key());
    assert!(matches!(
        v.verify_access(&missing, at(T0)),
        Err(TokenError::Malformed(_))
    ));
    // Another key claiming our kid.
    let impostor = craft(&header("ES256", "JWT"), &payload, &other);
    assert!(matches!(
        v.verify_access(&impostor, at(T0)),
        Err(TokenError::BadSignature)
    ));
}

#[test]
fn key_rotation_keeps_retired_keys_verifying() {
    let old = SigningKey::generate().unwrap();
    let new = SigningKey::generate().unwrap();
    let ci = Principal::robot("ci");
    let old_token = TokenIssuer::new(old.clone(), config())
        .issue_access(&ci, vec![], at(T0))
        .unwrap();
    let new_issuer = TokenIssuer::new(new, config());
    let new_token = new_issuer.issue_access(&ci, vec![], at(T0)).unwrap();

    let during = new_issuer.verifier([old.verifying_key().clone()]);
    assert!(
        during
            .verify_access(old_token.token.expose(), at(T0))
            .is_ok()
    );
    assert!(
        during
            .verify_access(new_token.token.expose(), at(T0))
            .is_ok()
    );
    let after = new_issuer.verifier([]);
    assert!(matches!(
        after.verify_access(old_token.token.expose(), at(T0)),
        Err(TokenError::UnknownKey(_))
    ));
    assert!(
        after
            .verify_access(new_token.token.expose(), at(T0))
            .is_ok()
    );
}

#[test]
fn time_and_identity_claims_are_checked() {
    let v = verifier(); // leeway 30 s
    let key = raw_key();
    let signed = |overrides: &[(&str, serde_json::Value)]| {
        craft(&header("ES256", "JWT"), &claims_json(overrides), &key)
    };
    let cases: Vec<(&str, String, u64, Option<&str>)> = vec![
        ("fresh", signed(&[]), T0, None),
        ("just before exp", signed(&[]), T0 + 299, None),
        ("within leeway after exp", signed(&[]), T0 + 329, None),
        ("expired", signed(&[]), T0 + 330, Some("Expired")),
        ("long expired", signed(&[]), T0 + 86_400, Some("Expired")),
        (
            "nbf within leeway",
            signed(&[("nbf", (T0 + 30).into()), ("iat", (T0 + 30).into())]),
            T0,
            None,
        ),
        (
            "nbf in future",
            signed(&[("nbf", (T0 + 31).into())]),
            T0,
            Some("NotYetValid"),
        ),
        (
            "iat in future",
            signed(&[("iat", (T0 + 3600).into())]),
            T0,
            Some("NotYetValid"),
        ),
        (
            "exp before nbf",
            signed(&[("exp", (T0 - 1).into())]),
            T0,
            Some("Malformed"),
        ),
        (
            "wrong issuer",
            signed(&[("iss", "evil".into())]),
            T0,
            Some("WrongIssuer"),
        ),
        (
            "wrong audience",
            signed(&[("aud", "other-registry".into())]),
            T0,
            Some("WrongAudience"),
        ),
        (
            "audience as list",
            signed(&[("aud", serde_json::json!(["registry.test"]))]),
            T0,
            Some("Malformed"),
        ),
        (
            "missing exp",
            signed(&[("exp", serde_json::Value::Null)]),
            T0,
            Some("Malformed"),
        ),
        (
            "float exp",
            signed(&[("exp", serde_json::json!(1.7e9))]),
            T0,
            Some("Malformed"),
        ),
        (
            "unknown claim",
            signed(&[("admin", true.into())]),
            T0,
            Some("Malformed"),
        ),
        (
            "bad kind",
            signed(&[("ward_kind", "Root".into())]),
            T0,
            Some("Malformed"),
        ),
    ];
    for (what, token, now, want) in cases {
        let got = v.verify_access(&token, at(now));
        match want {
            None => assert!(got.is_ok(), "{what}: {got:?}"),
            Some(want) => assert_eq!(err_name(&got.unwrap_err()), want, "{what}"),
        }
    }
}

#[test]
fn header_extensions_and_encodings_are_refused() {
    let v = verifier();
    let key = raw_key();
    let kid = ward_key().kid().to_owned();
    let payload = claims_json(&[]);
    let attacker = SigningKey::generate().unwrap();
    let attacker_jwk = serde_json::to_string(&attacker.verifying_key().jwk()).unwrap();
    let headers = [
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","jwk":{attacker_jwk}}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","jku":"https://evil.example/keys"}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","x5u":"https://evil.example/cert"}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","crit":["exp"]}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","b64":false}}"#),
        format!(r#"{{"alg":"ES256","alg":"none","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
        "[]".to_owned(),
        "not json".to_owned(),
    ];
    for h in headers {
        let token = craft(&h, &payload, &key);
        assert!(
            matches!(
                v.verify_access(&token, at(T0)),
                Err(TokenError::Malformed(_))
            ),
            "{h}"
        );
    }

    let good = craft(&header("ES256", "JWT"), &payload, &key);
    let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let sig = Signature::from_slice(&Base64UrlUnpadded::decode_vec(s).unwrap()).unwrap();
    let high_s = high_s_twin(&sig);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "DER signature",
            format!("{h}.{p}.{}", b64(sig.to_der().as_bytes())),
            "BadSignature",
        ),
        (
            "high-S twin",
            format!("{h}.{p}.{}", b64(&high_s.to_bytes())),
            "BadSignature",
        ),
        ("padded base64", format!("{h}.{p}.{s}="), "Malformed"),
        (
            "standard alphabet",
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
            "Malformed",
        ),
        ("four parts", format!("{good}.x"), "Malformed"),
        ("trailing newline", format!("{good}\n"), "Malformed"),
        ("leading space", format!(" {good}"), "Malformed"),
        ("empty", String::new(), "Malformed"),
        ("dots only", "..".to_owned(), "Malformed"),
        ("huge", format!("{h}.{}.{s}", "A".repeat(9000)), "TooLarge"),
    ];
    for (what, token, want) in cases {
        let e = v.verify_access(&token, at(T0)).unwrap_err();
        assert_eq!(err_name(&e), want, "{what}: {e:?}");
    }
    assert!(
        v.verify_access(&good, at(T0)).is_ok(),
        "the untouched token is fine"
    );
    // The high-S twin is mathematically valid: only the canonical-form rule rejects it.
    assert_ne!(sig.to_bytes(), high_s.to_bytes());
}

/// (r, n − s): the other valid ECDSA signature for the same message.
fn high_s_twin(sig: &Signature) -> Signature {
    let (r, s) = sig.split_scalars();
    let neg_s = -*s.as_ref();
    Signature::from_scalars(r.to_bytes(), neg_s.to_bytes()).unwrap()
}

#[test]
fn errors_never_echo_the_token_and_escape_hostile_text() {
    let v = verifier();
    let evil_alg = "HS256\u{1b}[2J".repeat(20);
    let token = craft(&header(&evil_alg, "JWT"), &claims_json(&[]), &raw_key());
    let message = v.verify_access(&token, at(T0)).unwrap_err().to_string();
    assert!(!message.contains('\u{1b}'), "{message}");
    assert!(message.len() < 200, "{message}");
    let issued = TokenIssuer::new(ward_key(), config())
        .issue_access(&Principal::robot("ci"), vec![], at(T0))
        .unwrap();
    let body = TokenResponse::new(&issued, None).unwrap();
    assert!(!format!("{body:?}").contains(issued.token.expose()));
}

#[test]
fn token_endpoint_response_shape() {
    let issuer = TokenIssuer::new(ward_key(), config());
    let alice = Principal::user("alice", vec![]);
    let access_token = issuer.issue_access(&alice, vec![], at(T0)).unwrap();
    let refresh = issuer
        .issue_refresh(&alice, "password:1:00", at(T0))
        .unwrap();
    let json =
        serde_json::to_value(TokenResponse::new(&access_token, Some(&refresh)).unwrap()).unwrap();
    assert_eq!(json["token"], access_token.token.expose());
    assert_eq!(json["access_token"], access_token.token.expose());
    assert_eq!(json["refresh_token"], refresh.token.expose());
    assert_eq!(json["expires_in"], 300);
    assert_eq!(json["issued_at"], "2026-01-01T00:00:00Z");
    let without = serde_json::to_value(TokenResponse::new(&access_token, None).unwrap()).unwrap();
    assert!(without.get("refresh_token").is_none());
}

#[test]
fn issuing_never_exceeds_what_verification_accepts() {
    let mut cfg = config();
    cfg.token_bytes_max = 600;
    let issuer = TokenIssuer::new(ward_key(), cfg);
    let many: Vec<ResourceActions> = (0..20)
        .flat_map(|i| access(&format!("repo{i}"), &["pull"]))
        .collect();
    let e = issuer
        .issue_access(&Principal::robot("ci"), many, at(T0))
        .unwrap_err();
    assert!(matches!(e, TokenError::TooLarge { max: 600, .. }), "{e:?}");
}
