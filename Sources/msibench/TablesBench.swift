func runTablesBench(_ arguments: [String]) throws {
    FileHandleOutput.standardError("not implemented yet\n")
}
