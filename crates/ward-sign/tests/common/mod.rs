//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// The cosign fixture directory (real bytes from sigstore-rs; its README says
/// how they were made). A copy of the project's shared fixtures is kept in the
/// repository so a fresh clone tests on its own.
pub fn cosign_fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cosign-skopeo")
}

/// One file of the shared cosign fixtures, as text.
pub fn cosign_fixture(name: &str) -> String {
    let path = cosign_fixture_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// A file under this crate's tests/fixtures.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file under this crate's tests/fixtures, as bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

use ward_sign::policy::{IdentityRule, Match, NamedTrustedRoot, Rule, TrustPolicy, TrustedKey};
use ward_sign::trust_root::TrustedRoot;

/// A rule covering every repository, accepting `keys` and `identities`.
pub fn rule(name: &str, keys: &[&str], identities: Vec<IdentityRule>, threshold: u32) -> Rule {
    Rule {
        name: name.into(),
        repositories: vec!["**".into()],
        artifact_types: Vec::new(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        identities,
        threshold,
        docker_reference: Default::default(),
        require_tlog_for_keys: false,
        promote_tags: Vec::new(),
    }
}

/// An identity rule with exact SAN and issuer.
pub fn identity(root: &str, san: &str, issuer: Option<&str>, require_tlog: bool) -> IdentityRule {
    IdentityRule {
        trust_root: root.into(),
        subject: Match::Exact(san.into()),
        issuer: issuer.map(|i| Match::Exact(i.into())),
        require_tlog,
    }
}

/// A trusted key entry.
pub fn trusted_key(name: &str, pem: &str) -> TrustedKey {
    TrustedKey {
        name: name.into(),
        public_key: pem.into(),
        owner: None,
        revoked: false,
    }
}

/// A policy trusting one sigstore trusted root under `name`.
pub fn keyless_policy(name: &str, root_file: &str, san: &str, issuer: &str) -> TrustPolicy {
    TrustPolicy {
        keys: Vec::new(),
        trust_roots: vec![NamedTrustedRoot {
            name: name.into(),
            trusted_root: TrustedRoot::from_json(&fixture(root_file)).unwrap(),
        }],
        rules: vec![rule(
            "keyless",
            &[],
            vec![identity(name, san, Some(issuer), true)],
            1,
        )],
    }
}

use std::path::Path;
use std::process::Command;

/// Runs a tool and panics with its output if it fails or is missing.
pub fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (is it installed? Debian package: openssl): {e}")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A throwaway CA made with the openssl CLI: root -> intermediate -> leaf, the
/// leaf carrying an email SAN and Fulcio's OIDC-issuer extension.
pub struct TestCa {
    /// Holds every file.
    pub dir: tempfile::TempDir,
}

impl TestCa {
    /// Root and intermediate CA.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for key in ["root.key", "intermediate.key"] {
            run(
                "openssl",
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    key,
                ],
                p,
            );
        }
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                "/O=Ward tests/CN=Test Root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "root.pem",
            ],
            p,
        );
        std::fs::write(
            p.join("intermediate.ext"),
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        run(
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                "intermediate.key",
                "-subj",
                "/O=Ward tests/CN=Test Intermediate",
                "-out",
                "intermediate.csr",
            ],
            p,
        );
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "intermediate.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "2",
                "-days",
                "3650",
                "-extfile",
                "intermediate.ext",
                "-out",
                "intermediate.pem",
            ],
            p,
        );
        TestCa { dir }
    }

    /// Issues a leaf for `email` (OIDC issuer `issuer`) valid for `days`;
    /// returns (key PEM path, certificate PEM path).
    pub fn leaf(
        &self,
        name: &str,
        email: &str,
        issuer: &str,
        days: u32,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let ext = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n\
             subjectAltName=critical,email:{email}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n"
        );
        self.issue("intermediate", name, &ext, days)
    }

    /// Issues certificate `name` signed by `issuer` (`root`, `intermediate` or an
    /// earlier `name`) with the given openssl extension lines; returns (key, cert).
    pub fn issue(
        &self,
        issuer: &str,
        name: &str,
        extensions: &str,
        days: u32,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let p = self.dir.path();
        let key = format!("{name}.key");
        run(
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
            p,
        );
        std::fs::write(p.join(format!("{name}.ext")), extensions).unwrap();
        run(
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/O=Ward tests/CN={name}"),
                "-out",
                &format!("{name}.csr"),
            ],
            p,
        );
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-set_serial",
                "3",
                "-days",
                &days.to_string(),
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
            p,
        );
        (p.join(key), p.join(format!("{name}.pem")))
    }

    /// A file of the CA directory, as text.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// A trusted root whose only CA is this root certificate.
    pub fn trusted_root(&self) -> TrustedRoot {
        let root = ward_sign::x509::Certificate::from_pem_chain(&self.read("root.pem")).unwrap();
        TrustedRoot::from_ca_chains(&[root])
    }
}

/// Writes `files` (relative path, contents) under a fresh directory named `name`.
pub fn model_dir(name: &str, files: &[(&str, &[u8])]) -> (tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join(name);
    for (path, contents) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    (parent, root)
}

/// The `model_signing` CLI in the worktree's venv; panics with the fix if absent.
pub fn model_signing_cli() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    let cli = venv.join("bin/model_signing");
    assert!(
        cli.exists(),
        "the interop tests need the PyPI model_signing tool in {}; create it with:\n  \
         python3 -m venv .venv && .venv/bin/pip install -r crates/ward-sign/requirements-test.txt",
        venv.display()
    );
    cli
}

/// Runs `model_signing` and returns whether it succeeded, with its output.
pub fn model_signing(args: &[&str]) -> (bool, String) {
    let output = Command::new(model_signing_cli())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run model_signing: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The venv's python; panics with the fix if absent.
pub fn venv_python() -> PathBuf {
    let cli = model_signing_cli();
    cli.with_file_name("python")
}
