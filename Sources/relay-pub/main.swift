import RelayCLISupport

await CLIRunner.main(RelayPub.self)
