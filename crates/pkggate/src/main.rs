fn main() -> std::process::ExitCode {
    pkggate::cli::main()
}
