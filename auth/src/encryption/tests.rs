use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

const CTX: &[u8] = b"/registry/secrets/ns/db";
const SECRET: &[u8] =
    br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="},"stringData":"hunter2-plain"}"#;

fn key(byte: u8, len: usize) -> String {
    STANDARD.encode(vec![byte; len])
}

fn config(providers: &str) -> EncryptionConfig {
    EncryptionConfig::from_yaml(&format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}"
    ))
    .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_provider_round_trips_with_kube_s_prefix_and_hides_the_plaintext() {
    let cases = [
        ("aesgcm", key(1, 32), "k8s:enc:aesgcm:v1:k1:"),
        ("aesgcm", key(1, 16), "k8s:enc:aesgcm:v1:k1:"),
        ("aesgcm", key(1, 24), "k8s:enc:aesgcm:v1:k1:"),
        ("aescbc", key(2, 32), "k8s:enc:aescbc:v1:k1:"),
        ("aescbc", key(2, 16), "k8s:enc:aescbc:v1:k1:"),
        ("secretbox", key(3, 32), "k8s:enc:secretbox:v1:k1:"),
    ];
    for (provider, secret, prefix) in cases {
        let cfg = config(&format!(
            "  - {provider}:\n      keys: [{{name: k1, secret: {secret}}}]\n"
        ));
        let t = cfg.transformer_for("", "secrets");
        let stored = t.encrypt(SECRET, CTX).unwrap();
        assert!(stored.starts_with(prefix.as_bytes()), "{provider}");
        assert!(
            !contains(&stored, b"hunter2"),
            "{provider} leaks the plaintext"
        );
        assert!(
            !contains(&stored, b"aHVudGVyMg"),
            "{provider} leaks the base64 value"
        );
        // Random nonces: the same value never encrypts to the same bytes.
        assert_ne!(stored, t.encrypt(SECRET, CTX).unwrap(), "{provider}");
        let back = t.decrypt(&stored, CTX).unwrap();
        assert_eq!(
            back,
            Decrypted {
                data: SECRET.to_vec(),
                stale: false
            }
        );
        // A flipped byte never decrypts to something else, with the authenticated providers.
        // aescbc is not authenticated (as in kube): a flip there fails only when the padding
        // breaks, which is why aesgcm or secretbox should be preferred.
        let mut tampered = stored.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let read = t.decrypt(&tampered, CTX);
        if provider == "aescbc" {
            assert_ne!(
                read.map(|d| d.data).ok().as_deref(),
                Some(SECRET),
                "{provider}"
            );
        } else {
            assert!(read.is_err(), "{provider}");
        }
    }
}

#[test]
fn aesgcm_binds_the_value_to_its_storage_key() {
    let cfg = config(&format!(
        "  - aesgcm:\n      keys: [{{name: k1, secret: {}}}]\n",
        key(1, 32)
    ));
    let t = cfg.transformer_for("", "secrets");
    let stored = t.encrypt(SECRET, CTX).unwrap();
    let e = t
        .decrypt(&stored, b"/registry/secrets/other/db")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "aesgcm decryption with key \"k1\" failed: message authentication failed"
    );
}

#[test]
fn rotation_new_key_first_old_second_then_rewrite() {
    let old = config(&format!(
        "  - aescbc:\n      keys: [{{name: old, secret: {}}}]\n",
        key(7, 32)
    ));
    let written = old
        .transformer_for("", "secrets")
        .encrypt(SECRET, CTX)
        .unwrap();

    // Step 1: the new key goes first, the old one stays to read.
    let rotating = config(&format!(
        "  - aesgcm:\n      keys: [{{name: new, secret: {}}}]\n  - aescbc:\n      keys: [{{name: old, secret: {}}}]\n",
        key(8, 32),
        key(7, 32)
    ));
    let t = rotating.transformer_for("", "secrets");
    let read = t.decrypt(&written, CTX).unwrap();
    assert_eq!(read.data, SECRET);
    assert!(read.stale, "a value under the old key must be re-written");
    // Step 2: re-write with the new key.
    let rewritten = t.encrypt(&read.data, CTX).unwrap();
    assert!(rewritten.starts_with(b"k8s:enc:aesgcm:v1:new:"));
    assert!(!t.decrypt(&rewritten, CTX).unwrap().stale);

    // Step 3: the old key can go; re-written values still read, old ones no longer.
    let new_only = config(&format!(
        "  - aesgcm:\n      keys: [{{name: new, secret: {}}}]\n",
        key(8, 32)
    ));
    let t = new_only.transformer_for("", "secrets");
    assert_eq!(t.decrypt(&rewritten, CTX).unwrap().data, SECRET);
    assert_eq!(
        t.decrypt(&written, CTX).unwrap_err().to_string(),
        "no matching prefix found"
    );
}

#[test]
fn several_keys_of_one_provider_all_read() {
    let cfg = config(&format!(
        "  - secretbox:\n      keys:\n      - {{name: b, secret: {}}}\n      - {{name: a, secret: {}}}\n",
        key(2, 32),
        key(1, 32)
    ));
    let only_a = config(&format!(
        "  - secretbox:\n      keys: [{{name: a, secret: {}}}]\n",
        key(1, 32)
    ));
    let by_a = only_a
        .transformer_for("", "secrets")
        .encrypt(SECRET, CTX)
        .unwrap();
    let read = cfg
        .transformer_for("", "secrets")
        .decrypt(&by_a, CTX)
        .unwrap();
    assert_eq!(read.data, SECRET);
    assert!(read.stale);
}

#[test]
fn identity_reads_plaintext_but_never_encrypted_data() {
    let cfg = config(&format!(
        "  - aesgcm:\n      keys: [{{name: k, secret: {}}}]\n  - identity: {{}}\n",
        key(1, 32)
    ));
    let t = cfg.transformer_for("", "secrets");
    // Written before encryption was turned on.
    let read = t.decrypt(SECRET, CTX).unwrap();
    assert_eq!(
        read,
        Decrypted {
            data: SECRET.to_vec(),
            stale: true
        }
    );
    // Encrypted with a key that has since been removed.
    let gone = b"k8s:enc:aesgcm:v1:removed:0123456789abcdef";
    assert_eq!(
        t.decrypt(gone, CTX).unwrap_err(),
        TransformError::ReadEncryptedAsIdentity
    );
    // Without identity, plaintext is refused.
    let strict = config(&format!(
        "  - aesgcm:\n      keys: [{{name: k, secret: {}}}]\n",
        key(1, 32)
    ));
    assert_eq!(
        strict
            .transformer_for("", "secrets")
            .decrypt(SECRET, CTX)
            .unwrap_err(),
        TransformError::MatchPrefix
    );
    // Identity first (turning encryption off): writes plain, still reads encrypted values.
    let off = config(&format!(
        "  - identity: {{}}\n  - aesgcm:\n      keys: [{{name: k, secret: {}}}]\n",
        key(1, 32)
    ));
    let enc = t.encrypt(SECRET, CTX).unwrap();
    let t = off.transformer_for("", "secrets");
    assert!(t.writes_plaintext());
    assert_eq!(t.encrypt(SECRET, CTX).unwrap(), SECRET);
    assert_eq!(
        t.decrypt(&enc, CTX).unwrap(),
        Decrypted {
            data: SECRET.to_vec(),
            stale: true
        }
    );
}

#[test]
fn resources_match_exactly_by_group_or_everything_first_rule_wins() {
    let cfg = EncryptionConfig::from_yaml(&format!(
        r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, deployments.apps, foos.example.com]
  providers:
  - aesgcm: {{keys: [{{name: a, secret: {a}}}]}}
- resources: ["*.batch", "*."]
  providers:
  - aescbc: {{keys: [{{name: b, secret: {b}}}]}}
- resources: ["*.*"]
  providers:
  - secretbox: {{keys: [{{name: c, secret: {c}}}]}}
"#,
        a = key(1, 32),
        b = key(2, 32),
        c = key(3, 32)
    ))
    .unwrap();
    // The ciphertext after the prefix is random and may itself contain ':'.
    let written_with = |g: &str, r: &str, prefix: &str| {
        let stored = cfg.transformer_for(g, r).encrypt(b"x", b"k").unwrap();
        stored.starts_with(prefix.as_bytes())
    };
    assert!(written_with("", "secrets", "k8s:enc:aesgcm:v1:a:"));
    assert!(written_with("apps", "deployments", "k8s:enc:aesgcm:v1:a:"));
    assert!(written_with("example.com", "foos", "k8s:enc:aesgcm:v1:a:"));
    assert!(written_with("batch", "jobs", "k8s:enc:aescbc:v1:b:"));
    assert!(written_with("", "configmaps", "k8s:enc:aescbc:v1:b:"));
    assert!(written_with(
        "apps",
        "statefulsets",
        "k8s:enc:secretbox:v1:c:"
    ));
    assert!(cfg.encrypts("cellfed.io", "cells"));

    let only_secrets = config(&format!(
        "  - aesgcm: {{keys: [{{name: a, secret: {}}}]}}\n",
        key(1, 32)
    ));
    assert!(!only_secrets.encrypts("", "configmaps"));
    assert_eq!(
        only_secrets
            .transformer_for("", "configmaps")
            .encrypt(b"x", b"k")
            .unwrap(),
        b"x"
    );
}

#[test]
fn invalid_configurations_are_refused_without_echoing_secrets() {
    let err = |yaml: &str| EncryptionConfig::from_yaml(yaml).unwrap_err().to_string();
    let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";
    let short = STANDARD.encode(b"too-short-secret-value");
    let e = err(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{name: k, secret: {short}}}]}}\n"
    ));
    assert!(e.contains("resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 22, expected one of [16, 24, 32]"), "{e}");
    assert!(!e.contains(&short));
    let e = err(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - secretbox: {{keys: [{{name: k, secret: {}}}]}}\n",
        key(1, 16)
    ));
    assert!(e.contains("expected one of [32]"), "{e}");
    let e = err(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{name: k, secret: {}}}]}}\n    identity: {{}}\n",
        key(1, 32)
    ));
    assert!(e.contains("exactly one provider"), "{e}");
    let e = err(&format!(
        "{head}resources:\n- resources: [\"*.*\"]\n  providers: [{{identity: {{}}}}]\n- resources: [secrets]\n  providers: [{{identity: {{}}}}]\n"
    ));
    assert!(
        e.contains("resource \"secrets\" is masked by earlier rule \"*.*\""),
        "{e}"
    );
    let e = err(&format!(
        "{head}resources:\n- resources: [Secrets, \"*\"]\n  providers: []\n"
    ));
    assert!(
        e.contains("resources[0].resources[0]") && e.contains("resources[0].resources[1]"),
        "{e}"
    );
    assert!(e.contains("at least one provider"), "{e}");
    let e = err(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - kms: {{apiVersion: v2, name: x, endpoint: unix:///kms.sock}}\n"
    ));
    assert!(e.contains("kms providers are not supported"), "{e}");
    assert!(
        err(&format!(
            "{head}resources:\n- resources: [secrets]\n  providers:\n  - aesgmc: {{}}\n"
        ))
        .contains("unknown field")
    );
    assert!(err("apiVersion: v1\nkind: ConfigMap\n").contains("expected apiVersion"));
    assert!(err(&format!("{head}resources: []\n")).contains("at least one resource"));
    let e = err(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - aescbc: {{keys: [{{name: k, secret: {a}}}, {{name: k, secret: {a}}}, {{name: '', secret: {a}}}, {{name: x, secret: '!!'}}]}}\n",
        a = key(1, 32)
    ));
    assert!(e.contains("keys[1].name: Duplicate value"), "{e}");
    assert!(e.contains("keys[2].name: Required value"), "{e}");
    assert!(
        e.contains("keys[3].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"),
        "{e}"
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let cfg = config(&format!(
        "  - aesgcm:\n      keys: [{{name: k1, secret: {}}}]\n",
        key(0x41, 32)
    ));
    let shown = format!("{cfg:?}");
    assert!(shown.contains("aesgcm:k1"), "{shown}");
    assert!(!shown.contains("65, 65"), "{shown}");
}

#[test]
fn reads_from_a_file() {
    let dir = std::env::temp_dir().join(format!("cellfed-auth-enc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("encryption.yaml");
    std::fs::write(
        &path,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{identity: {}}]\n",
    )
    .unwrap();
    assert!(
        !EncryptionConfig::from_path(&path)
            .unwrap()
            .encrypts("", "secrets")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        EncryptionConfig::from_path(&path)
            .unwrap_err()
            .to_string()
            .contains("encryption.yaml")
    );
}
