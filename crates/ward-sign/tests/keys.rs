#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Key formats against the shared cosign fixtures (see
//! /work/shared/fixtures/cosign-skopeo/README.md, mirrored by `common::cosign_fixture`).

mod common;

use common::cosign_fixture;
use ward_sign::encoding::b64_decode;
use ward_sign::keys::{KeyAlgorithm, KeyError, PrivateKey, PublicKey};

#[test]
fn both_encrypted_labels_decrypt_to_the_published_public_keys() {
    let cases = [
        ("cosign.key", "fixture-test-password", "cosign.pub"),
        ("other-key.key", "testpassphrase", "other-key.pub"),
    ];
    for (key, password, public) in cases {
        let private =
            PrivateKey::from_pem(&cosign_fixture(key), Some(password.as_bytes())).unwrap();
        let public = PublicKey::from_pem(&cosign_fixture(public)).unwrap();
        assert_eq!(private.public_key(), &public, "{key}");
    }
}

#[test]
fn a_wrong_or_missing_password_fails_cleanly() {
    let pem = cosign_fixture("cosign.key");
    assert_eq!(
        PrivateKey::from_pem(&pem, Some(b"not-the-password")).unwrap_err(),
        KeyError::WrongPassword
    );
    assert_eq!(
        PrivateKey::from_pem(&pem, None).unwrap_err(),
        KeyError::PasswordRequired
    );
}

#[test]
fn the_fixture_signature_verifies_only_with_its_key() {
    let payload = cosign_fixture("signature-payload.json");
    let signature = b64_decode(cosign_fixture("signature.b64").trim()).unwrap();
    let good = PublicKey::from_pem(&cosign_fixture("cosign.pub")).unwrap();
    let other = PublicKey::from_pem(&cosign_fixture("other-key.pub")).unwrap();
    assert!(good.verify(payload.as_bytes(), &signature).is_ok());
    assert!(other.verify(payload.as_bytes(), &signature).is_err());
    let mut tampered = payload.into_bytes();
    tampered[10] ^= 1;
    assert!(good.verify(&tampered, &signature).is_err());
}

#[test]
fn generated_keys_round_trip_through_the_encrypted_format_and_sign() {
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let key = PrivateKey::generate(algorithm).unwrap();
        let pem = key.to_encrypted_pem(b"pw").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pem(&pem, Some(b"pw")).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let sig = again.sign(b"message").unwrap();
        assert!(
            key.public_key().verify(b"message", &sig).is_ok(),
            "{algorithm:?}"
        );
        assert!(
            key.public_key().verify(b"messagf", &sig).is_err(),
            "{algorithm:?}"
        );
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(public.key_id(), key.public_key().key_id());
    }
}

use common::run;
use ward_sign::encoding::{pem_decode, pem_encode};

#[test]
fn hostile_key_files_are_refused_before_any_expensive_work() {
    let body = |kdf: &str, n: u64, cipher: &str| {
        let doc = serde_json::json!({
            "kdf": {"name": kdf, "params": {"N": n, "r": 8, "p": 1}, "salt": "AAAA"},
            "cipher": {"name": cipher, "nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            "ciphertext": "AAAA"
        });
        pem_encode("ENCRYPTED SIGSTORE PRIVATE KEY", doc.to_string().as_bytes())
    };
    let cases = [
        (
            body("scrypt", 1 << 30, "nacl/secretbox"),
            "exceed the limits",
        ),
        (body("scrypt", 1000, "nacl/secretbox"), "not a power of two"),
        (
            body("pbkdf2", 1 << 15, "nacl/secretbox"),
            "key derivation \"pbkdf2\"",
        ),
        (body("scrypt", 1 << 15, "aes-gcm"), "cipher \"aes-gcm\""),
        (
            pem_encode("ENCRYPTED COSIGN PRIVATE KEY", b"not json"),
            "encrypted key JSON",
        ),
    ];
    for (pem, needle) in cases {
        let started = std::time::Instant::now();
        let err = PrivateKey::from_pem(&pem, Some(b"pw"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
        assert!(
            started.elapsed().as_secs() < 1,
            "{needle} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn key_ids_are_the_sha256_of_the_der_public_key() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cosign.pub"), cosign_fixture("cosign.pub")).unwrap();
    run(
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-in",
            "cosign.pub",
            "-outform",
            "DER",
            "-out",
            "cosign.der",
        ],
        tmp.path(),
    );
    let der = std::fs::read(tmp.path().join("cosign.der")).unwrap();
    let key = PublicKey::from_pem(&cosign_fixture("cosign.pub")).unwrap();
    assert_eq!(key.key_id().0, ward_core::Digest::of(&der));
    assert_eq!(&pem_decode(&key.to_pem()).unwrap().contents[..], &der[..]);
}

/// Keys made by OpenSSL, signatures in both directions, one row per scheme.
#[test]
fn signatures_interoperate_with_openssl_for_every_key_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("msg"), b"the manifest bytes").unwrap();
    // (key generation args, openssl sign args, openssl verify args)
    let cases: [(&[&str], &[&str], &[&str]); 5] = [
        (
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["dgst", "-sha256", "-sign", "key.pem"],
            &["dgst", "-sha256", "-verify", "key.pub"],
        ),
        (
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            &["dgst", "-sha384", "-sign", "key.pem"],
            &["dgst", "-sha384", "-verify", "key.pub"],
        ),
        (
            &["-algorithm", "ED25519"],
            &[
                "pkeyutl", "-sign", "-rawin", "-inkey", "key.pem", "-in", "msg",
            ],
            &[
                "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "key.pub", "-in", "msg",
            ],
        ),
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            &["dgst", "-sha256", "-sign", "key.pem"],
            &["dgst", "-sha256", "-verify", "key.pub"],
        ),
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            &[
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sign",
                "key.pem",
            ],
            &[
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-verify",
                "key.pub",
            ],
        ),
    ];
    for (i, (generate, sign, _)) in cases.iter().enumerate() {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(generate);
        args.extend_from_slice(&["-out", "key.pem"]);
        run("openssl", &args, dir);
        run(
            "openssl",
            &["pkey", "-in", "key.pem", "-pubout", "-out", "key.pub"],
            dir,
        );
        let mut args = sign.to_vec();
        args.extend_from_slice(&["-out", "openssl.sig"]);
        if args[0] == "dgst" {
            args.push("msg");
        }
        run("openssl", &args, dir);
        let public =
            PublicKey::from_pem(&std::fs::read_to_string(dir.join("key.pub")).unwrap()).unwrap();
        let sig = std::fs::read(dir.join("openssl.sig")).unwrap();
        assert!(
            public.verify(b"the manifest bytes", &sig).is_ok(),
            "case {i}: OpenSSL's signature"
        );
        assert!(public.verify(b"other bytes", &sig).is_err(), "case {i}");

        // Ward signs with the same key (its fixed scheme); OpenSSL verifies the
        // PKCS#1 / ECDSA / Ed25519 cases (the PSS row only checks reading).
        let private =
            PrivateKey::from_pem(&std::fs::read_to_string(dir.join("key.pem")).unwrap(), None)
                .unwrap();
        std::fs::write(
            dir.join("ward.sig"),
            private.sign(b"the manifest bytes").unwrap(),
        )
        .unwrap();
        if i < 4 {
            let verify = cases[i].2;
            let mut args = verify.to_vec();
            if args[0] == "dgst" {
                args.extend_from_slice(&["-signature", "ward.sig", "msg"]);
            } else {
                args.extend_from_slice(&["-sigfile", "ward.sig"]);
            }
            run("openssl", &args, dir);
        }
    }
}

#[test]
fn rsa_pss_spki_keys_and_generated_rsa_keys_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA-PSS",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "pss.pem",
        ],
        dir,
    );
    run(
        "openssl",
        &["pkey", "-in", "pss.pem", "-pubout", "-out", "pss.pub"],
        dir,
    );
    std::fs::write(dir.join("msg"), b"m").unwrap();
    run(
        "openssl",
        &["dgst", "-sha256", "-sign", "pss.pem", "-out", "sig", "msg"],
        dir,
    );
    let public =
        PublicKey::from_pem(&std::fs::read_to_string(dir.join("pss.pub")).unwrap()).unwrap();
    assert!(
        public
            .verify(b"m", &std::fs::read(dir.join("sig")).unwrap())
            .is_ok()
    );

    let key = PrivateKey::generate(KeyAlgorithm::Rsa3072).unwrap();
    let again = PrivateKey::from_pem(&key.to_encrypted_pem(b"pw").unwrap(), Some(b"pw")).unwrap();
    let sig = again.sign(b"m").unwrap();
    assert_eq!(sig.len(), 384);
    assert!(key.public_key().verify(b"m", &sig).is_ok());
}
