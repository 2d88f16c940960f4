#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The signing key on disk: PKCS#8 PEM, mode 0600, never overwritten, never
//! read when others can read it. Files live under Cargo's per-target temp dir.

use std::fs;
use std::path::PathBuf;

use ward_auth::token::{KeyError, KeyOrigin, SigningKey};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ward-auth-key-files")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_then_load_gives_the_same_key() {
    let dir = scratch("round-trip");
    let path = dir.join("token-signing.pem");
    let key = SigningKey::generate().unwrap();
    key.save_pem_file(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let loaded = SigningKey::load_pem_file(&path).unwrap();
    assert_eq!(loaded.kid(), key.kid());
    assert_eq!(loaded.verifying_key(), key.verifying_key());
    // Only the key remains: no temporary files.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    assert!(!format!("{loaded:?}").contains(text.lines().nth(1).unwrap()));
}

#[test]
fn saving_never_overwrites() {
    let dir = scratch("no-overwrite");
    let path = dir.join("key.pem");
    let first = SigningKey::generate().unwrap();
    first.save_pem_file(&path).unwrap();
    let second = SigningKey::generate().unwrap();
    let err = second.save_pem_file(&path).unwrap_err();
    assert!(matches!(err, KeyError::Exists(_)), "{err}");
    assert_eq!(SigningKey::load_pem_file(&path).unwrap().kid(), first.kid());
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "temporary file cleaned up"
    );
}

#[test]
fn load_or_generate_generates_once() {
    let dir = scratch("load-or-generate");
    let path = dir.join("key.pem");
    let (made, origin) = SigningKey::load_or_generate(&path).unwrap();
    assert_eq!(origin, KeyOrigin::Generated);
    let (again, origin) = SigningKey::load_or_generate(&path).unwrap();
    assert_eq!(origin, KeyOrigin::Loaded);
    assert_eq!(made.kid(), again.kid());
}

#[test]
fn concurrent_first_starts_agree_on_one_key() {
    let dir = scratch("race");
    let path = dir.join("key.pem");
    let kids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    SigningKey::load_or_generate(&path)
                        .unwrap()
                        .0
                        .kid()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
    assert_eq!(SigningKey::load_pem_file(&path).unwrap().kid(), kids[0]);
}

#[cfg(unix)]
#[test]
fn keys_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("permissions");
    let path = dir.join("key.pem");
    SigningKey::generate()
        .unwrap()
        .save_pem_file(&path)
        .unwrap();
    for bad in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        let err = SigningKey::load_pem_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::Permissions { mode, .. } if mode == bad),
            "{bad:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // load_or_generate must not replace a key it cannot read.
        assert!(SigningKey::load_or_generate(&path).is_err());
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(SigningKey::load_pem_file(&path).is_ok());
}

#[test]
fn unusable_files_are_reported() {
    let dir = scratch("unusable");
    let missing = SigningKey::load_pem_file(&dir.join("missing.pem")).unwrap_err();
    assert!(
        matches!(missing, KeyError::Io { op: "open", .. }),
        "{missing}"
    );

    assert!(matches!(
        SigningKey::load_pem_file(&dir),
        Err(KeyError::NotAKeyFile(_))
    ));

    let garbage = dir.join("garbage.pem");
    write_private(
        &garbage,
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    );
    let err = SigningKey::load_pem_file(&garbage).unwrap_err();
    assert!(matches!(err, KeyError::Pem(_)), "{err}");
    assert!(
        !err.to_string().contains("not base64"),
        "no key material in errors: {err}"
    );

    let huge = dir.join("huge.pem");
    write_private(&huge, &vec![b'A'; 20_000]);
    assert!(matches!(
        SigningKey::load_pem_file(&huge),
        Err(KeyError::NotAKeyFile(_))
    ));

    let no_dir = SigningKey::generate()
        .unwrap()
        .save_pem_file(&dir.join("nope/key.pem"))
        .unwrap_err();
    assert!(
        matches!(no_dir, KeyError::Io { op: "create", .. }),
        "{no_dir}"
    );
}

fn write_private(path: &std::path::Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn pem_round_trip_in_memory() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    assert_eq!(SigningKey::from_pkcs8_pem(&pem).unwrap().kid(), key.kid());
    assert!(matches!(
        SigningKey::from_pkcs8_pem("hello"),
        Err(KeyError::Pem(_))
    ));
    let public = key.verifying_key().to_public_key_pem().unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    // A public key is not a private key, and the reverse.
    assert!(SigningKey::from_pkcs8_pem(&public).is_err());
    assert!(ward_auth::token::VerifyingKey::from_public_key_pem(&pem).is_err());
    assert_ne!(key.kid(), SigningKey::generate().unwrap().kid());
    assert_eq!(key.kid().len(), 43, "base64url of 32 bytes");
}
