from connectorctl.cli.main import main

main()
