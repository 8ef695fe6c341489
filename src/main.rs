use clap::Parser;
use orderwatch::cli::{self, Cli, Command};

fn main() -> std::process::ExitCode {
    // orderwatch's own logs: human-readable by default, one JSON object a line
    // with ORDERWATCH_LOG_FORMAT=json (for shipping them to a collector).
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORDERWATCH_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("ORDERWATCH_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the async runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => orderwatch::serve::run(args.settings()?).await,
            Command::Search(args) => cli::search(args).await,
            Command::Tail(args) => cli::tail(args).await,
            Command::CheckConfig { file } => cli::check_config(&file),
            Command::Projects(args) => cli::projects(args).await,
            Command::LostOrders(args) => cli::lost_orders(args).await,
            Command::Demo(args) => orderwatch::demo::run(args).await,
            Command::User(cli::UserCommand::Add(args)) => cli::user_add(args).await,
            Command::User(cli::UserCommand::List(args)) => cli::user_list(args).await,
            Command::User(cmd) => cli::user_change(cmd).await,
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
