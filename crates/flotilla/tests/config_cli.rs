//! `flotilla config check|show` as an operator uses them: on the shipped example configs, on
//! a broken file, and with JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flotilla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .output()
        .expect("run the flotilla binary")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_configs() -> Vec<PathBuf> {
    let dir = repo().join("cluster-configs");
    let mut out = vec![dir.join("lab.conf")];
    for sub in ["ka01", "ka02", "tcp-check", "fwmark", "sync-group"] {
        out.push(dir.join(sub).join("keepalived.conf"));
    }
    out
}

#[test]
fn every_example_config_is_valid_without_strict_errors() {
    for conf in example_configs() {
        let out = flotilla(&["config", "check", "--strict", &conf.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} should be valid even with --strict:\n{stderr}",
            conf.display()
        );
        assert!(
            !stderr.contains("error:"),
            "{}: unexpected errors:\n{stderr}",
            conf.display()
        );
    }
}

#[test]
fn a_broken_file_exits_1_with_every_error_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "cluster {\n    name x\n    director d1 { address 10.0.0.300 }\n    director d2 { address 10.0.0.2 port 0 }\n}\nno_such_block {\n}\n",
    )
    .expect("write config");
    let out = flotilla(&["config", "check", &conf.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let path = conf.to_string_lossy();
    assert!(
        stderr.contains(&format!(
            "{path}:3:27: error: director address '10.0.0.300' is not an IPv4 or IPv6 address"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:4:41: error: mesh port 0 is out of range")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{path}:6:1: warning: unknown keyword 'no_such_block'"
        )),
        "{stderr}"
    );
    // The same file is an error with --strict because of the unknown keyword too.
    let strict = flotilla(&["config", "check", "--strict", &path]);
    assert!(
        String::from_utf8_lossy(&strict.stderr)
            .contains(&format!("{path}:6:1: error: unknown keyword"))
    );
}

#[test]
fn show_prints_nothing_for_an_invalid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "cluster {\n    director d1 { address nowhere }\n}\n")
        .expect("write config");
    let out = flotilla(&["config", "show", &conf.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn show_json_is_the_versioned_model() {
    let lab = repo().join("cluster-configs/lab.conf");
    let out = flotilla(&["config", "show", "--json", &lab.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["cluster"]["name"], "lab");
    let directors = v["cluster"]["directors"].as_array().expect("directors");
    let names: Vec<&str> = directors
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["d1", "d2", "d3"]);
    assert_eq!(v["cluster"]["placement"]["hold_down"], "30s");
}

#[test]
fn show_output_is_itself_a_valid_config_with_the_same_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    for conf in example_configs() {
        let first = flotilla(&["config", "show", &conf.to_string_lossy()]);
        assert!(first.status.success(), "{}", conf.display());
        let again = dir.path().join("again.conf");
        std::fs::write(&again, &first.stdout).expect("write");
        let a = flotilla(&["config", "show", "--json", &conf.to_string_lossy()]);
        let b = flotilla(&["config", "show", "--json", &again.to_string_lossy()]);
        assert!(
            b.status.success(),
            "{}: {}",
            conf.display(),
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&b.stdout),
            "{}: show → show is not stable",
            conf.display()
        );
    }
}

#[test]
fn ipvs_config_shows_the_table_a_configuration_asks_for() {
    let path = repo().join("cluster-configs/ka01/keepalived.conf");
    let conf = path.to_str().expect("a UTF-8 path");
    let out = flotilla(&["ipvs", "--config", conf]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("IP Virtual Server version 1.2.1"),
        "{text}"
    );
    assert!(text.contains("TCP  192.168.126.100:80 wrr\n"), "{text}");
    assert!(
        text.contains("  -> 192.168.126.21:80            Route   2      0          0"),
        "{text}"
    );
    let json = flotilla(&["ipvs", "--json", "--config", conf]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{v}");
}

#[test]
fn cert_init_and_issue_write_keys_0600_and_refuse_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("a UTF-8 path");
    let out = flotilla(&["cert", "init", "--dir", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = flotilla(&["cert", "issue", "--ca", d, "--name", "d1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["ca-key.pem", "d1-key.pem"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .expect("key written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let again = flotilla(&["cert", "init", "--dir", d]);
    assert_eq!(again.status.code(), Some(1));
    let bad = flotilla(&["cert", "issue", "--ca", d, "--name", "not a name"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&bad.stderr).is_empty());
}

#[test]
fn genhash_prints_the_md5_of_the_page() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n");
    });
    let out = flotilla(&["genhash", &format!("http://{addr}/index.html")]);
    server.join().expect("server");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // md5("hello\n")
    assert!(
        text.contains("digest b1946ac92492d2347c6235b4d2611184"),
        "{text}"
    );
    let bad = flotilla(&["genhash", "ftp://x/"]);
    assert_eq!(bad.status.code(), Some(1));
}
