//! Fuzzing the config loader with a fixed budget (fixed seed and case count): arbitrary
//! bytes, and TOML documents of the real keys with arbitrary values, never panic
//! `FileConfig::load` or `Config::resolve`; each failure is a clear, named error.

use super::{Config, ConfigError, FileConfig, Overrides};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

const CASES: u32 = 1_500;

const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "trusted_proxies",
    "admin_token_file",
    "scim_token_file",
    "durability",
    "max_body_bytes",
    "log_format",
    "cache_mb",
    "http_workers",
    "actor_threads",
    "access_log",
    "access_log_sample",
    "nightly_at",
    "timezone",
    "snapshot_every",
    "client_request_timeout_s",
    "request_body_timeout_s",
    "client_disconnect_timeout_s",
    "keep_alive_s",
    "max_streams_per_user",
    "max_streams",
    "user_rate_per_s",
    "user_rate_burst",
    "peer_rate_per_s",
    "peer_rate_burst",
    "login_rate_per_minute",
    "login_rate_burst",
    "connector_secrets_dir",
    "connector_credentials",
    "unknown_key",
];

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        RunnerConfig {
            cases: CASES,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]),
    )
}

/// A TOML value of any type, or a fragment that is not TOML at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,30}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"fsync\"",
            "\"process\"",
            "\"json\"",
            "\"human\"",
            "\"all\"",
            "\"errors\"",
            "\"off\"",
            "\"02:00\"",
            "\"25:61\"",
            "\"Europe/Berlin\"",
            "\"Mars/Olympus\"",
            "\"127.0.0.1:0\"",
            "\"[::1]:99999\"",
            "[\"10.0.0.0/8\", \"::1\"]",
            "[\"300.1.1.1/8\"]",
            "[]",
            "[1, 2]",
            "{}",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,20}",
    ]
}

fn load_text(text: &[u8]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("slotpool.toml");
    std::fs::write(&path, text).expect("write config");
    let file = FileConfig::load(&path)?;
    Config::resolve(Overrides::default(), file)
}

fn clear(e: &ConfigError) -> bool {
    let s = e.to_string();
    !s.is_empty()
        && match e {
            ConfigError::Invalid { name, .. } => KEYS.contains(name),
            ConfigError::Parse { path, .. } | ConfigError::Read { path, .. } => {
                s.contains(path.as_str())
            }
            ConfigError::Secret(_) => true,
        }
}

#[test]
fn arbitrary_bytes_never_panic_the_config_loader() {
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..400), |bytes| {
            if let Err(e) = load_text(&bytes) {
                prop_assert!(clear(&e), "unclear error {e:?}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn toml_with_arbitrary_values_never_panics_and_errors_name_the_setting() {
    let doc = prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 0..8);
    let loaded = std::cell::Cell::new(0);
    let refused = std::cell::Cell::new(0);
    runner()
        .run(&doc, |pairs| {
            let text: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            match load_text(text.as_bytes()) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(e) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(clear(&e), "unclear error for {text:?}: {e:?}");
                }
            }
            Ok(())
        })
        .unwrap();
    let (loaded, refused) = (loaded.get(), refused.get());
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}
