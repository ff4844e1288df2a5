//! The `portcullis` binary: parses the command line and runs the command.
//! `anyhow` lives only here, at the edge.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use portcullis::bundle;
use portcullis::cli::{
    BuildArgs, BundleCommand, CheckArgs, Cli, Command, EvalArgs, ServeArgs, TestArgs, VerifyArgs,
};
use portcullis::config::{Config, LogFormat};
use portcullis::engine::testing::{self, Outcome};
use portcullis::engine::{string_items, DataPath, EngineOptions, Value};
use portcullis::gatekeeper::suite::{self, Outcome as SuiteOutcome};

/// The rule `portcullis check` evaluates for data consistency errors.
const DATA_CHECK_PATH: &str = "data.system.check.errors";
use portcullis::pdp::{build_policy_set, LoadOptions, Prepared};
use portcullis::server::{shutdown_signal, Server};

/// mimalloc: request handling allocates many small values (every JSON
/// string and object of an input becomes an engine value); measured ~30 %
/// faster than the system allocator at parsing a 21 KB AdmissionReview.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // regorus's parser backtracks through anyhow errors, and anyhow captures
    // a backtrace for each one when RUST_BACKTRACE is set: `portcullis check`
    // of the shipped policies took 0.36 s instead of 0.20 s (BENCHMARKS.md).
    // Library backtraces stay off unless asked for by their own variable;
    // a panic still prints its backtrace under RUST_BACKTRACE. Set before
    // any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Eval(args) => eval(args),
        Command::Check(args) => check(args),
        Command::Test(args) => test(args),
        Command::Verify(args) => verify(args),
        Command::Bundle(BundleCommand::Build(args)) => bundle_build(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|key| std::env::var(key).ok())?;
    if let Some(addr) = args.addr {
        config.server.addr = addr;
    }
    if let Some(level) = args.log_level {
        config.log.level = level;
    }
    if let Some(format) = args.log_format {
        config.log.format = format.into();
    }
    if !args.bundles.is_empty() {
        config.bundles = args.bundles;
    }
    config.validate()?;
    init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config).await?;
        tracing::info!(addr = %server.local_addr(), "portcullis is serving the decision API");
        server.run(shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn init_tracing(config: &Config) {
    // rustls warns on every handshake whose SNI is an IP address (clients
    // connecting to 127.0.0.1, load generators): not worth a line each.
    let quiet = "rustls::msgs::handshake=error";
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},{quiet}", config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{quiet}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn read_input(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read input file {}", path.display()))?;
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let value = if is_yaml {
        Value::from_yaml_str(&text)
    } else {
        Value::from_json_str(&text)
    };
    value.with_context(|| format!("{} is not valid input", path.display()))
}

/// The engine options of `eval` and `test`: OPA's `--strict-builtin-errors`.
fn tool_engine_options(strict_builtin_errors: bool) -> EngineOptions {
    EngineOptions {
        strict_builtin_errors,
        ..EngineOptions::default()
    }
}

/// The load options of `eval` and `test`: OPA's `--v0-compatible`.
fn tool_load_options(v0_compatible: bool) -> LoadOptions {
    LoadOptions {
        v0_compatible,
        ..LoadOptions::tools()
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let policies = build_policy_set(
        &args.bundles,
        &tool_engine_options(args.strict_builtin_errors),
        &tool_load_options(args.v0_compatible),
    )?
    .policies;
    let input = args.input.as_deref().map(read_input).transpose()?;
    let results = policies.query(&args.query, input)?;
    let mut out = std::io::stdout().lock();
    if results.result.is_empty() {
        writeln!(out, "undefined")?;
        return Ok(ExitCode::SUCCESS);
    }
    let single = results.result.len() == 1
        && results.result[0].expressions.len() == 1
        && matches!(&results.result[0].bindings, Value::Object(b) if b.is_empty());
    let value = if single {
        results.result[0].expressions[0].value.clone()
    } else {
        Value::from_json_str(&serde_json::to_string(&results)?)?
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    Ok(ExitCode::SUCCESS)
}

fn bundle_build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let bundles = args
        .bundles
        .iter()
        .map(|dir| bundle::load(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let name = args
        .output
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_string())
        .unwrap_or_else(|| "bundle".to_string());
    let combined = bundle::combine(bundles, &name, args.revision)?;
    // Refuse to pack what would not compile.
    portcullis::engine::PolicySet::compile(
        std::slice::from_ref(&combined),
        EngineOptions::default(),
    )?;
    let signing_key = match (&args.signing_key, &args.signing_alg) {
        (Some(key), alg) => {
            let is_file = std::path::Path::new(key).is_file();
            Some(bundle::signing::KeyConfig {
                id: args.signing_keyid.clone(),
                algorithm: alg.clone(),
                key: (!is_file).then(|| key.clone()),
                key_file: is_file.then(|| key.into()),
            })
        }
        (None, _) => None,
    };
    bundle::write_tarball(&combined, &args.output, signing_key.as_ref())?;
    println!(
        "wrote {} (revision {:?}, {} module(s){})",
        args.output.display(),
        combined.manifest.revision,
        combined.policies.len(),
        if signing_key.is_some() {
            ", signed"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match build_policy_set(
        &args.bundles,
        &EngineOptions::default(),
        &LoadOptions::tools(),
    ) {
        Ok(Prepared {
            policies,
            gatekeeper,
            bundles,
        }) => {
            let data_errors = match policies.evaluate(&DataPath::from_dotted(DATA_CHECK_PATH), None)
            {
                Ok(errors) => string_items(&errors),
                Err(err) => vec![format!("{DATA_CHECK_PATH} could not be evaluated: {err}")],
            };
            if !data_errors.is_empty() {
                for error in &data_errors {
                    eprintln!("data: {error}");
                }
                eprintln!("{} error(s)", data_errors.len());
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "ok: {} bundle(s), {} module(s), {} Gatekeeper template(s), {} constraint(s)",
                bundles.len(),
                policies.modules().len(),
                gatekeeper.template_names().len(),
                gatekeeper.constraints().len()
            );
            // Not errors: these answer like OPA, on the slower interpreter.
            for (entry_point, gap) in policies.vm_gaps() {
                println!("note: {entry_point} runs on the interpreter: {gap}");
            }
            // Not errors either: OPA-valid, and usually harmless, but the
            // interpreter answers them differently from OPA.
            for head in policies.undefined_heads() {
                println!("warning: {head}");
            }
            for warning in policies.warnings() {
                println!("warning: {warning}");
            }
            for warning in gatekeeper.warnings() {
                println!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let errors = err.errors();
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} error(s)", errors.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let suites = suite::find_suites(&args.paths)?;
    if suites.is_empty() {
        anyhow::bail!("no Gatekeeper suite (kind: Suite) found under the given paths");
    }
    let options = EngineOptions::default();
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for path in &suites {
        let results = match suite::run_suite(path, &options) {
            Ok(results) => results,
            Err(err) => {
                writeln!(out, "ERROR {}: {err}", path.display())?;
                failed += 1;
                continue;
            }
        };
        let noteworthy = results.iter().any(|r| r.outcome != SuiteOutcome::Pass);
        if args.verbose || noteworthy {
            writeln!(out, "{}:", path.display())?;
        }
        for result in &results {
            match result.outcome {
                SuiteOutcome::Pass => passed += 1,
                SuiteOutcome::Skip => skipped += 1,
                SuiteOutcome::Fail | SuiteOutcome::Error => failed += 1,
            }
            if !args.verbose && result.outcome == SuiteOutcome::Pass {
                continue;
            }
            write!(out, "  {} {}", result.outcome.label(), result.name)?;
            match &result.detail {
                Some(detail) => writeln!(out, ": {detail}")?,
                None => writeln!(out)?,
            }
        }
    }
    write!(out, "{passed} passed, {failed} failed")?;
    if skipped > 0 {
        write!(out, ", {skipped} skipped")?;
    }
    writeln!(out)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let coverage = args.coverage || args.threshold.is_some();
    let policies = build_policy_set(
        &args.bundles,
        &tool_engine_options(args.strict_builtin_errors),
        &tool_load_options(args.v0_compatible),
    )?
    .policies;
    let report = testing::run_tests(&policies, args.run.as_deref(), coverage)?;
    let mut out = std::io::stdout().lock();
    let mut current_file = "";
    for result in &report.results {
        let show = args.verbose || result.outcome != Outcome::Pass;
        if !show {
            continue;
        }
        if result.file != current_file {
            current_file = &result.file;
            writeln!(out, "{current_file}:")?;
        }
        let duration = format!("{:.1?}", result.duration);
        match &result.outcome {
            Outcome::Pass => writeln!(out, "  {}: PASS ({duration})", result.name)?,
            Outcome::Fail => writeln!(out, "  {}: FAIL ({duration})", result.name)?,
            Outcome::Error(message) => {
                writeln!(out, "  {}: ERROR ({duration})\n    {message}", result.name)?
            }
        }
    }
    if let Some(files) = &report.coverage {
        writeln!(out, "\ncoverage:")?;
        for file in files {
            writeln!(
                out,
                "  {} {:.1}% ({} covered, {} not covered)",
                file.file,
                file.percent(),
                file.covered.len(),
                file.not_covered.len()
            )?;
            if !file.not_covered.is_empty() {
                let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
                writeln!(out, "    not covered: lines {}", lines.join(", "))?;
            }
        }
        if let Some(total) = report.coverage_percent() {
            writeln!(out, "  total {total:.1}%")?;
        }
    }
    writeln!(out, "{}", "-".repeat(60))?;
    let failed = report.failed() + report.errored();
    writeln!(out, "{} passed, {} failed", report.passed(), failed)?;
    let below_threshold = match (args.threshold, report.coverage_percent()) {
        (Some(min), Some(total)) if total < min => {
            writeln!(
                out,
                "coverage {total:.1}% is below the threshold of {min:.1}%"
            )?;
            true
        }
        _ => false,
    };
    if report.results.is_empty() {
        writeln!(out, "no tests found")?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(if failed > 0 || below_threshold {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
