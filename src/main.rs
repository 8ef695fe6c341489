use clap::Parser;
use orderwatch::cli::{self, Cli, Command};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORDERWATCH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the async runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => orderwatch::serve::run(args.settings()?).await,
            Command::Search(args) => cli::search(args).await,
            Command::Tail(args) => cli::tail(args).await,
            Command::CheckConfig { file } => cli::check_config(&file),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orderwatch: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
