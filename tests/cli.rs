//! The `portcullis` binary: eval, check, test, verify, help, and serve with
//! a SIGTERM drain.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::repo;

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.current_dir(repo(""));
    cmd
}

/// The last component of a temporary directory: how policy ids name it.
fn dir_name(dir: &tempfile::TempDir) -> String {
    dir.path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = portcullis().args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["eval", "--help"],
        vec!["check", "--help"],
        vec!["test", "--help"],
        vec!["verify", "--help"],
    ] {
        let (code, stdout, _) = run(&cmd);
        assert_eq!(code, 0, "{cmd:?}");
        assert!(stdout.contains("Usage:"), "{cmd:?}: {stdout}");
    }
}

#[test]
fn eval_prints_the_result_as_json() {
    let input = repo("target/cli-eval-input.json");
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("examples/feature-payments.json")).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, example["input"].to_string()).unwrap();
    let (code, stdout, stderr) = run(&[
        "eval",
        "-b",
        "policies",
        "-b",
        "bundles",
        "-i",
        input.to_str().unwrap(),
        "data.provisioning.decision.allowed",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "true");

    let (code, stdout, _) = run(&[
        "eval",
        "-b",
        "policies",
        "-b",
        "bundles",
        "data.provisioning.nothing",
    ]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "undefined");

    let (code, stdout, _) = run(&[
        "eval",
        "-b",
        "bundles",
        "data.platform.classes.feature.max_ttl_hours",
    ]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "168");
}

#[test]
fn check_passes_on_shipped_bundles_and_reports_every_error_with_position() {
    let (code, stdout, stderr) = run(&["check", "policies", "bundles"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: 2 bundle(s)"), "{stdout}");
    // Every shipped entry point runs on the VM, and no shipped rule is one
    // regorus's interpreter answers differently from OPA.
    assert!(!stdout.contains("note:"), "{stdout}");
    assert!(!stdout.contains("warning:"), "{stdout}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.rego"), "package a\n\nx := := 1\n").unwrap();
    std::fs::write(tmp.path().join("b.rego"), "package b\ny if {\n").unwrap();
    let (code, _, stderr) = run(&["check", tmp.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    let name = dir_name(&tmp);
    assert!(stderr.contains(&format!("{name}/a.rego:3:")), "{stderr}");
    assert!(stderr.contains(&format!("{name}/b.rego:")), "{stderr}");
    assert!(stderr.contains("2 error(s)"), "{stderr}");

    // A misspelt builtin is a compile error, as in OPA, not a failure of
    // every decision that reaches it.
    std::fs::write(
        tmp.path().join("a.rego"),
        "package a\n\nimport rego.v1\n\nallow if regex.mtch(\"^a\", input.x)\n",
    )
    .unwrap();
    std::fs::remove_file(tmp.path().join("b.rego")).unwrap();
    let (code, _, stderr) = run(&["check", tmp.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!(
            "{name}/a.rego:5:10: undefined function regex.mtch"
        )),
        "{stderr}"
    );

    // A rule the VM would answer differently from OPA is a note, not an
    // error: it runs on the interpreter.
    let gap = tempfile::tempdir().unwrap();
    std::fs::write(
        gap.path().join("g.rego"),
        "package g\n\nimport rego.v1\n\nallow if {\n  role := input.role\n  not role == \"guest\"\n}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["check", gap.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let name = dir_name(&gap);
    assert!(
        stdout.contains(&format!(
            "note: data.g.allow runs on the interpreter: {name}/g.rego:6:3: `role := …`"
        )),
        "{stdout}"
    );

    // An `every` variable used as an index: the VM would iterate it (a
    // note, the interpreter answers), and under `not` neither engine
    // answers like OPA (an error).
    let every = tempfile::tempdir().unwrap();
    let every_rule = "package e\n\nimport rego.v1\n\nok := {\"a\": true}\n\n\
                      all_ok if {\n  every k, _ in input.m {\n    ok[k]\n  }\n}\n";
    std::fs::write(every.path().join("e.rego"), every_rule).unwrap();
    let (code, stdout, stderr) = run(&["check", every.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let name = dir_name(&every);
    assert!(
        stdout.contains(&format!(
            "note: data.e.all_ok runs on the interpreter: {name}/e.rego:9:5: `ok[k]` is indexed by the `every` variable `k`"
        )),
        "{stdout}"
    );
    std::fs::write(
        every.path().join("e.rego"),
        every_rule.replace("ok[k]", "not ok[k]"),
    )
    .unwrap();
    let (code, _, stderr) = run(&["check", every.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("{name}/e.rego:9:9: `not ok[k]` inside `every`")),
        "{stderr}"
    );

    // A partial rule whose element can be undefined is a warning,
    // positioned in its file (Gatekeeper templates: `gatekeeper::library`).
    std::fs::write(
        every.path().join("e.rego"),
        "package e\n\nimport rego.v1\n\nnames contains input.o[k].name if {\n  some k in input.ks\n}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["check", every.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "warning: {name}/e.rego:5:16: `input.o[k].name` in the head of `names` can be undefined"
        )),
        "{stdout}"
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("data.json"), "{\"a\": [1,\n 2,,]}").unwrap();
    let (code, _, stderr) = run(&["check", data.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("data.json:2:"), "{stderr}");
}

#[test]
fn bundle_build_packs_an_archive_that_serves_the_same_decisions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("platform.tar.gz");
    let (code, stdout, stderr) = run(&[
        "bundle",
        "build",
        "policies",
        "bundles",
        "-o",
        out.to_str().unwrap(),
        "--revision",
        "2026.11.22-7",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("revision \"2026.11.22-7\""), "{stdout}");
    let (code, stdout, _) = run(&[
        "eval",
        "-b",
        out.to_str().unwrap(),
        "data.platform.classes.feature.max_ttl_hours",
    ]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "168");
    let (code, _, stderr) = run(&[
        "bundle",
        "build",
        "policies",
        "policies",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "overlapping roots are refused");
    assert!(stderr.contains("overlapping roots"), "{stderr}");
}

#[test]
fn check_reports_inconsistent_platform_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bundles");
    let copy = Command::new("cp")
        .args([
            "-r",
            repo("bundles").to_str().unwrap(),
            data.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copy.success());
    let teams_file = data.join("platform/teams/data.json");
    let mut teams: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&teams_file).unwrap()).unwrap();
    teams["search"].as_object_mut().unwrap().remove("quota");
    teams["payments"]["network"]["egress_allowances"] = serde_json::json!(["300.1.2.0/24"]);
    std::fs::write(&teams_file, teams.to_string()).unwrap();
    let services_file = data.join("platform/services/data.json");
    let mut services: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&services_file).unwrap()).unwrap();
    services["ghost-api"] =
        serde_json::json!({"team": "ghosts", "owners": [], "criticality": "low"});
    std::fs::write(&services_file, services.to_string()).unwrap();

    let (code, _, stderr) = run(&["check", "policies", data.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("data: teams.search has no quota"),
        "{stderr}"
    );
    assert!(stderr.contains("malformed CIDR 300.1.2.0/24"), "{stderr}");
    assert!(
        stderr.contains("services.ghost-api is owned by ghosts, which is not a team"),
        "{stderr}"
    );
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

#[test]
fn test_command_runs_the_rego_unit_tests() {
    let (code, stdout, _) = run(&["test", "policies", "-v", "--coverage"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("data.tests.provisioning.test_fitting_request_is_allowed: PASS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("policies/provisioning/quota.rego"),
        "{stdout}"
    );
    let summary = stdout.lines().rev().find(|l| l.contains("passed")).unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("p_test.rego"),
        "package p_test\n\ntest_ok if true\ntest_bad if false\ntest_err if 1 / 0\n",
    )
    .unwrap();
    let (code, stdout, _) = run(&["test", tmp.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stdout.contains("test_bad: FAIL"), "{stdout}");
    assert!(
        !stdout.contains("test_ok: PASS"),
        "passing tests only with -v: {stdout}"
    );
    assert!(stdout.contains("1 passed, 2 failed"), "{stdout}");
}

#[test]
fn serve_answers_and_drains_on_sigterm_flushing_masked_decision_logs() {
    let mut child = portcullis()
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .env("PORTCULLIS_DECISION_LOGS", "true")
        .env("PORTCULLIS_DECISION_LOGS_SINK", "stdout")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a log line").expect("readable");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if let Some(addr) = event["fields"]["addr"].as_str() {
            break addr.to_string();
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!(
                "http://{addr}/v1/data/provisioning/decision/allowed"
            ))
            .body(r#"{"input": {"team": "payments", "password": "hunter2-do-not-log"}}"#)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown requested")),
        "{rest:?}"
    );
    // The decision event was written to stdout before the process ended,
    // with the password erased by the shipped mask policy.
    let mut events = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut events).unwrap();
    assert!(!events.contains("hunter2"), "{events}");
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{events}");
    assert_eq!(lines[0]["path"], "provisioning/decision/allowed");
    assert_eq!(lines[0]["input"]["team"], "payments");
    assert_eq!(lines[0]["erased"], serde_json::json!(["/input/password"]));
}

#[test]
fn verify_runs_the_shipped_gatekeeper_suites() {
    let (code, stdout, stderr) = run(&["verify", "-v", "tests/fixtures/gatekeeper/suites"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("  PASS pods-must-have-owner/pod-without-owner"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  SKIP no-nodeport/skipped-case-is-reported"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("43 passed, 0 failed, 1 skipped"),
        "{stdout}"
    );
}

#[test]
fn verify_reports_failing_and_broken_cases_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = repo("tests/fixtures/gatekeeper");
    let dir = tmp.path().join("hostnamespace");
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    for sample in ["pod-host.yaml", "pod-isolated.yaml"] {
        std::fs::copy(
            fixtures.join("suites/hostnamespace/samples").join(sample),
            dir.join("samples").join(sample),
        )
        .unwrap();
    }
    let template = fixtures.join("bundle/templates/hostnamespace.yaml");
    let constraint = fixtures.join("bundle/constraints/no-host-namespaces.yaml");
    std::fs::write(
        dir.join("suite.yaml"),
        format!(
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: host\n  template: {}\n  constraint: {}\n  cases:\n  - name: wrong-count\n    object: samples/pod-host.yaml\n    assertions:\n    - violations: 3\n  - name: wrong-message\n    object: samples/pod-host.yaml\n    assertions:\n    - violations: 1\n      message: hostIPC\n  - name: right\n    object: samples/pod-isolated.yaml\n    assertions:\n    - violations: no\n  - name: missing-object\n    object: samples/nothing.yaml\n",
            template.display(),
            constraint.display()
        ),
    )
    .unwrap();
    let (code, stdout, _) = run(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("  FAIL host/wrong-count: expected 3 violation(s), found 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  FAIL host/wrong-message: expected 1 violation(s) matching \"hostIPC\", found 0"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ERROR host/missing-object: cannot read"),
        "{stdout}"
    );
    assert!(!stdout.contains("host/right"), "passes are quiet: {stdout}");
    assert!(
        stdout.trim_end().ends_with("1 passed, 3 failed"),
        "{stdout}"
    );
}

#[test]
fn check_refuses_cel_only_templates_and_positions_template_rego_errors() {
    let (code, _, stderr) = run(&["check", "tests/fixtures/gatekeeper/unsupported"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "tests/fixtures/gatekeeper/unsupported/cel-only.yaml:1:1: ConstraintTemplate k8sceldenyall is not supported"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("does not evaluate CEL"), "{stderr}");

    let tmp = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(repo(
        "tests/fixtures/gatekeeper/bundle/templates/privileged.yaml",
    ))
    .unwrap()
    .replace("privileged == true", "privileged == = true");
    std::fs::write(tmp.path().join("template.yaml"), template).unwrap();
    let (code, _, stderr) = run(&["check", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("template.yaml:26:43: ConstraintTemplate k8sprivilegedcontainer:"),
        "{stderr}"
    );

    let (code, stdout, stderr) = run(&[
        "check",
        "tests/fixtures/gatekeeper/bundle",
        "tests/fixtures/gatekeeper/inventory",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("9 Gatekeeper template(s), 10 constraint(s)"),
        "{stdout}"
    );
}

#[test]
fn test_and_eval_take_opa_s_strict_and_v0_flags() {
    // Rego v0 without a manifest, as `opa test --v0-compatible` reads it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v0");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("p.rego"),
        "package p\n\nn = to_number(input.text)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p_test.rego"),
        "package p\n\ntest_a_word_is_no_number {\n\tnot n with input as {\"text\": \"x\"}\n}\n",
    )
    .unwrap();
    let dir = dir.to_str().unwrap();
    let (code, _, stderr) = run(&["test", dir]);
    assert_ne!(code, 0, "v1 cannot read a v0 body without `if`: {stderr}");
    // OPA's default: the failing to_number is undefined, so `not n` holds.
    let (code, stdout, stderr) = run(&["test", "--v0-compatible", dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    // Strict: the builtin error fails the test.
    let (code, stdout, _) = run(&["test", "--v0-compatible", "--strict-builtin-errors", dir]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stdout.contains("ERROR"), "{stdout}");

    let input = tmp.path().join("input.json");
    std::fs::write(&input, r#"{"text": "x"}"#).unwrap();
    let input = input.to_str().unwrap();
    let (code, stdout, _) = run(&[
        "eval",
        "--v0-compatible",
        "-b",
        dir,
        "-i",
        input,
        "data.p.n",
    ]);
    assert_eq!((code, stdout.trim()), (0, "undefined"));
    let (code, _, stderr) = run(&[
        "eval",
        "--v0-compatible",
        "--strict-builtin-errors",
        "-b",
        dir,
        "-i",
        input,
        "data.p.n",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("as number"), "{stderr}");
}
