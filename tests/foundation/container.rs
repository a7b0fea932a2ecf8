//! The container image's parts that can be checked without a container runtime (CI has
//! none): the build context `.containerignore` leaves, the Containerfile's shape, and the
//! entrypoint script run for real as an unprivileged user with the environment a
//! `docker run -e ...` would give it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobMatcher};

use crate::common::{free_port, openssl, require_tool, text, TestAppliance};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `.containerignore` as Docker reads it: one pattern per line, `#` comments, matched
/// against the context-relative path with `*` inside one segment and `**` across; a path
/// is left out when it or any parent directory matches (no `!` exceptions are used).
fn ignore_patterns() -> Vec<GlobMatcher> {
    let text = std::fs::read_to_string(repo().join(".containerignore")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            assert!(!l.starts_with('!'), "exceptions are not modelled: {l}");
            GlobBuilder::new(l.trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher()
        })
        .collect()
}

fn excluded(patterns: &[GlobMatcher], path: &str) -> bool {
    let mut prefix = PathBuf::new();
    Path::new(path).components().any(|c| {
        prefix.push(c);
        patterns.iter().any(|p| p.is_match(&prefix))
    })
}

#[test]
fn build_context_leaves_out_state_secrets_and_build_output_but_not_sources() {
    let patterns = ignore_patterns();
    for secret in [
        "target/release/credmint",
        "target/debug/deps/libcredmint.rlib",
        "data/hsm-user.pin",
        "data/hsm-so.pin",
        "data/ledger.redb",
        "data/softhsm-tokens/0f1e/token.object",
        "firmware-config/hsm-user.pin",
        "firmware-config/data/ledger.redb",
        "deploy/operator-admin-key.pem",
        "some/where/softhsm-tokens/x/token.object",
        "fuzz/corpus/csr/1234",
        "fuzz/target/x86_64-unknown-linux-gnu/release/csr",
        ".git/config",
    ] {
        assert!(
            excluded(&patterns, secret),
            "{secret} would enter the image context"
        );
    }
    // Everything the Containerfile copies must stay in the context, or the build fails.
    let containerfile = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    let mut copied = 0;
    for line in containerfile.lines() {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(repo().join(source).exists(), "COPY {source}: no such path");
            assert!(!excluded(&patterns, source), "COPY {source} is ignored");
            copied += 1;
        }
    }
    assert!(
        copied >= 5,
        "the Containerfile copies its sources ({copied})"
    );
    for source in [
        "src/main.rs",
        "ledger/src/lib.rs",
        "Cargo.lock",
        "firmware-config/credmint.toml",
    ] {
        assert!(
            !excluded(&patterns, source),
            "{source} must stay in the context"
        );
    }
    // The docker client reads .dockerignore: the same file.
    assert_eq!(
        std::fs::read_link(repo().join(".dockerignore")).unwrap(),
        Path::new(".containerignore")
    );
}

#[test]
fn containerfile_runs_unprivileged_with_a_volume_and_a_healthcheck() {
    let file = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    // Logical lines: a trailing backslash continues a directive.
    let joined = file.replace("\\\n", " ");
    let runtime = &joined[joined.rfind("\nFROM ").expect("a runtime stage")..];
    let directive = |name: &str| {
        runtime
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::trim)
    };
    let user = directive("USER").expect("USER in the runtime stage");
    assert!(user != "root" && user != "0", "runs as {user}");
    assert_eq!(directive("VOLUME"), Some("/opt/credmint/data"));
    assert!(directive("HEALTHCHECK").is_some_and(|h| h.contains("credmint\", \"health")));
    assert_eq!(directive("ENTRYPOINT"), Some("[\"credmint-entrypoint\"]"));
    assert!(
        !runtime.contains("COPY data") && !runtime.contains(".pin"),
        "no state or PIN baked into the image"
    );
}

/// The entrypoint with `docker run -e` style variables, as user nobody.
fn entrypoint(app: &TestAppliance, uid: Option<u32>, env: &[(&str, String)]) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_credmint")).parent().unwrap();
    let script = repo().join("deploy/container/entrypoint.sh");
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = Command::new(require_tool("setpriv"));
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
            ]);
            c.arg("sh");
            c
        }
        None => Command::new("sh"),
    };
    cmd.arg(script)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", "/nonexistent")
        .env("CREDMINT_CONFIG", &app.config_path)
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `credmint health` (the HEALTHCHECK command) with the same environment.
fn health(app: &TestAppliance, env: &[(&str, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_credmint"))
        .arg("--config")
        .arg(&app.config_path)
        .args(["health", "--timeout", "2"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap()
}

#[test]
fn entrypoint_refuses_root_then_initialises_and_serves_with_names_from_the_environment() {
    const NOBODY: u32 = 65534;
    let port = free_port();
    let app = TestAppliance::with_listen("container", "127.0.0.1:9");
    let public = format!("https://ca.example.test:{port}");
    let env = [
        ("CREDMINT_LISTEN", format!("127.0.0.1:{port}")),
        ("CREDMINT_NAMES", "ca.example.test, localhost".to_string()),
        ("CREDMINT_PUBLIC_URL", public.clone()),
    ];

    let as_root = entrypoint(&app, None, &env).output().unwrap();
    assert_eq!(as_root.status.code(), Some(2), "{}", text(&as_root.stderr));
    assert!(text(&as_root.stderr).contains("refusing to run as root"));
    assert!(!app.data().exists(), "nothing was created as root");

    // The image's data volume belongs to the unprivileged user.
    let chown = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(app.dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::set_permissions(
        app.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut child = entrypoint(&app, Some(NOBODY), &env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // HEALTHCHECK's command: healthy once init has run and the listener answers.
    let started = Instant::now();
    let healthy = loop {
        let probe = health(&app, &env);
        if probe.status.success() {
            break probe;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("entrypoint exited {status}: {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not healthy: {}{}",
            text(&probe.stdout),
            text(&probe.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(text(&healthy.stdout).contains("\"status\":\"ok\""));

    // Everything the entrypoint created belongs to the unprivileged user.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(app.data()).unwrap());
    assert_eq!(owner, NOBODY);

    // The served certificate carries the names from the environment; certificates point
    // their OCSP responder at the public URL from the environment.
    let (ok, served) = openssl(&[
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "ca.example.test",
        "-CAfile",
        &app.data().join("ca.pem").display().to_string(),
        "-verify_return_error",
        "-verify_hostname",
        "ca.example.test",
    ]);
    assert!(ok, "{served}");
    let operator = app.data().join("operator-admin.pem").display().to_string();
    let (_, text_out) = openssl(&["x509", "-in", &operator, "-noout", "-text"]);
    assert!(
        text_out.contains(&format!("OCSP - URI:{public}/ocsp")),
        "{text_out}"
    );

    // SIGTERM reaches `credmint serve` itself (the script exec'd it): a clean drain.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        health(&app, &env).status.code(),
        Some(1),
        "a stopped appliance is unhealthy"
    );
}
