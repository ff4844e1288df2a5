//! The command line (clap): `serve`, `eval`, `check`, `test`, `verify` and
//! `bundle build`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

/// Portcullis: a policy and guardrail decision service with OPA's Data API.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the decision API on the configured bundles.
    Serve(ServeArgs),
    /// Evaluate a query against bundles and print the result as JSON.
    Eval(EvalArgs),
    /// Load and compile bundles; print every error with file:line:col.
    Check(CheckArgs),
    /// Run the Rego unit tests (`test_*` rules) in bundles.
    Test(TestArgs),
    /// Run Gatekeeper test suites (`suite.yaml`, kind Suite), as `gator verify` does.
    Verify(VerifyArgs),
    /// Bundle tools.
    #[command(subcommand)]
    Bundle(BundleCommand),
}

/// `portcullis bundle …`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pack bundle directories into one `.tar.gz` bundle that OPA can load.
    Build(BuildArgs),
}

/// `portcullis bundle build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Bundle directories (or archives) to pack; their roots must not overlap.
    #[arg(required = true, value_name = "DIR")]
    pub bundles: Vec<PathBuf>,
    /// Where to write the archive.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "bundle.tar.gz"
    )]
    pub output: PathBuf,
    /// The revision to write into the manifest (default: the first bundle's).
    #[arg(long)]
    pub revision: Option<String>,
    /// Sign the bundle with this key: a PEM private key file, or the secret
    /// itself for HS256.
    #[arg(long, value_name = "FILE|SECRET")]
    pub signing_key: Option<String>,
    /// The signing algorithm: RS256, RS384, RS512, PS256, ES256, ES384, HS256.
    #[arg(long, value_name = "ALG", default_value = "RS256")]
    pub signing_alg: String,
    /// The key id written into the signature.
    #[arg(long, value_name = "ID", default_value = "default")]
    pub signing_keyid: String,
}

/// `portcullis serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A YAML config file.
    #[arg(long, short = 'c', env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address of the decision API (default 127.0.0.1:8181).
    #[arg(long)]
    pub addr: Option<String>,
    /// Log level or tracing filter (error, warn, info, debug, trace).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Bundle directories (default: policies and bundles in the current directory).
    #[arg(value_name = "BUNDLE_DIR")]
    pub bundles: Vec<PathBuf>,
}

/// Log format on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> LogFormat {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// `portcullis eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A bundle directory to load (repeatable).
    #[arg(short = 'b', long = "bundle", required = true, value_name = "DIR")]
    pub bundles: Vec<PathBuf>,
    /// A JSON (or YAML) file to use as input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The Rego query, e.g. `data.provisioning.decision`.
    pub query: String,
    /// A builtin that fails fails the query, as `opa eval
    /// --strict-builtin-errors`; by default, as OPA, the call is undefined.
    #[arg(long)]
    pub strict_builtin_errors: bool,
    /// Read Rego v0 where a bundle has no manifest saying which version it
    /// is written in, as `opa eval --v0-compatible`.
    #[arg(long)]
    pub v0_compatible: bool,
}

/// `portcullis check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Bundle directories.
    #[arg(required = true, value_name = "DIR")]
    pub bundles: Vec<PathBuf>,
}

/// `portcullis test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Bundle directories holding policies and their `*_test.rego` files.
    #[arg(required = true, value_name = "DIR")]
    pub bundles: Vec<PathBuf>,
    /// Print every test, not only failures.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Report line coverage per policy file.
    #[arg(long)]
    pub coverage: bool,
    /// Run only tests whose path contains this text.
    #[arg(long, value_name = "TEXT")]
    pub run: Option<String>,
    /// Fail when total coverage is below this percentage (implies --coverage).
    #[arg(long, value_name = "PERCENT")]
    pub threshold: Option<f64>,
    /// A builtin that fails fails the test (ERROR), as `opa test
    /// --strict-builtin-errors`; by default, as OPA, the call is undefined.
    #[arg(long)]
    pub strict_builtin_errors: bool,
    /// Read Rego v0 where a bundle has no manifest saying which version it
    /// is written in, as `opa test --v0-compatible`.
    #[arg(long)]
    pub v0_compatible: bool,
}

/// `portcullis verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Suite files, or directories searched for them.
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Print every case, not only failures.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}
