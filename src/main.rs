//! The `coldquery` binary: parse configuration, start logging, run the chosen command.

use clap::{CommandFactory, Parser};
use coldquery::config::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_clap_error(e),
    };
    coldquery::telemetry::init(cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let result = async {
                let app = coldquery::app::App::build(cli.config).await?;
                app.run_until_stopped().await
            }
            .await;
            match result {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Check => coldquery::check::run(&cli.config).await,
        Command::Health => coldquery::check::health(&cli.config).await,
    }
}

/// Print clap's error, naming the environment variable behind a bad flag value so that a
/// container operator knows which line of their `.env` to fix.
fn exit_with_clap_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
    {
        let long = arg
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches("--");
        let cmd = Cli::command();
        if let Some(env) = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
        {
            eprintln!(
                "configuration error in {} (--{long}):",
                env.to_string_lossy()
            );
        }
    }
    e.exit()
}
