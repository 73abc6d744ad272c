import Foundation
import SSL
import Yams

extension ExperimentTable {
    /// Reads and validates one experiment file. Throws `RegistryError.invalid` with every problem
    /// found in it, each at its `path:line:column`.
    public static func load(path: String) throws -> ExperimentTable {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RegistryError.invalid([Diagnostic(
                location: SourceLocation(file: path, line: 1, column: 1),
                problem: "cannot read the file (\(error.localizedDescription))",
                expected: "a readable UTF-8 YAML file", fix: "check the path and its permissions")])
        }
        return try parse(yaml: text, file: path)
    }

    /// Validates the text of an experiment file; `file` is the path that error messages show.
    public static func parse(yaml: String, file: String) throws -> ExperimentTable {
        let bytes = yaml.utf8.count
        guard bytes <= ExperimentFileLimits.maxBytes else {
            throw RegistryError.invalid([Diagnostic(
                location: SourceLocation(file: file, line: 1, column: 1),
                problem: "the file has \(bytes) bytes", expected: "an experiment file of at most \(ExperimentFileLimits.maxBytes) bytes",
                fix: "split the table into several files or check that this is an experiment file")])
        }
        let refused = prescan(yaml, file: file)
        guard refused.isEmpty else { throw RegistryError.invalid(refused) }
        let parser = ExperimentFileParser(file: file, text: yaml)
        let table = parser.parseTable()
        guard let table, parser.diagnostics.isEmpty else { throw RegistryError.invalid(sorted(parser.diagnostics)) }
        return table
    }
}

/// In line order (the order of discovery among equals).
func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
    diagnostics.enumerated().sorted { a, b in
        let (x, y) = (a.element.location, b.element.location)
        return (x.file, x.line, x.column, a.offset) < (y.file, y.line, y.column, b.offset)
    }.map(\.element)
}

/// A field an experiment file may write.
struct Field {
    let name: String
    let expected: String
    let example: String
    var required = true
}

/// The fields of a table and of a row; experiments/README.md documents them.
enum Fields {
    static let table: [Field] = [
        Field(name: "id", expected: "a lowercase id of letters, digits and hyphens", example: "id: simsiam-fig2"),
        Field(name: "title", expected: "a short title", example: "title: Stop-gradient"),
        Field(name: "paper", expected: "the citation", example: "paper: Chen & He, CVPR 2021"),
        Field(name: "source", expected: "the table or figure in the paper", example: "source: Fig 2"),
        Field(name: "protocol", expected: "one of \(ExperimentTable.protocolNames.joined(separator: ", "))", example: "protocol: mini"),
        Field(name: "metrics", expected: "a list from \(Metric.reportable.map(\.key).joined(separator: ", "))",
              example: "metrics: [linear, knn]"),
        Field(name: "seeds", expected: "an integer ≥ 1", example: "seeds: 1", required: false),
        Field(name: "rows", expected: "a non-empty list of rows", example: "rows: [{name: baseline, overrides: {}, …}]"),
    ]
    static let row: [Field] = [
        Field(name: "name", expected: "a name unique within the table", example: "name: baseline"),
        Field(name: "overrides", expected: "a mapping of dotted keys to values, `{}` for none",
              example: "overrides: {loss.stop_gradient: false}"),
        Field(name: "paper", expected: "a number or one of \(PaperValue.words.joined(separator: ", "))", example: "paper: 67.7"),
        Field(name: "paper_source", expected: "where the paper prints it (table, row, page)",
              example: "paper_source: Table 1, row (a)"),
        Field(name: "claim", expected: "one of \(Claim.forms.joined(separator: ", ")), or a list of them",
              example: "claim: [does-not-collapse, below baseline]", required: false),
        Field(name: "note", expected: "a string", example: "note: why this row is here", required: false),
    ]
    static func named(_ name: String, in fields: [Field]) -> Field {
        fields.first { $0.name == name } ?? Field(name: name, expected: "a value", example: "\(name): …")
    }
}

/// Turns one file's YAML into an `ExperimentTable`, collecting every problem on the way.
final class ExperimentFileParser {
    let file: String
    let text: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    func parseTable() -> ExperimentTable? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            diagnostics.append(yamlDiagnostic(error))
            return nil
        }
        let fieldNames = Fields.table.map(\.name).joined(separator: ", ")
        guard let root else {
            report(nil, "the file has no content", expected: "a mapping with the fields \(fieldNames)",
                   fix: "start from the example in experiments/README.md")
            return nil
        }
        guard let f = parseFields(of: root, spec: Fields.table, what: "the table") else { return nil }
        let id = f["id"].flatMap(parseIdentifier)
        let title = f["title"].flatMap { parseString($0, field: "title", in: Fields.table) }
        let paper = f["paper"].flatMap { parseString($0, field: "paper", in: Fields.table) }
        let source = f["source"].flatMap { parseString($0, field: "source", in: Fields.table) }
        let protocolName = f["protocol"].flatMap(parseProtocol)
        let metrics = f["metrics"].flatMap(parseMetrics)
        let seeds = f["seeds"].map(parseSeeds) ?? 1
        // NOTE: value types do not depend on the protocol, so overrides are still type-checked
        // (against `smoke`) when the protocol is misspelt or not implemented yet (`cifar`).
        let base = protocolName.flatMap { try? TrainingConfig.named($0) } ?? (try? TrainingConfig.named("smoke"))
        let rows = f["rows"].flatMap { parseRows($0, base: base) }
        guard diagnostics.isEmpty, let idNode = f["id"], let id, let title, let paper, let source, let protocolName,
              let metrics, let seeds, let rows else { return nil }
        return ExperimentTable(id: id, title: title, paper: paper, source: source, protocolName: protocolName,
                               metrics: metrics, seeds: seeds, rows: rows, file: file, location: location(idNode))
    }

    // MARK: Rows

    private func parseRows(_ node: Node, base: TrainingConfig?) -> [ExperimentRow]? {
        guard case let .sequence(items) = node, !items.isEmpty else {
            report(node, "`rows` is \(describe(node))", expected: "a non-empty list of rows",
                   fix: "list the rows as `- name: …` items under `rows:`")
            return nil
        }
        var rows: [ExperimentRow] = []
        var names: [String] = []
        var firstLine: [String: Int] = [:]
        var claims: [(row: String, claim: Claim, node: Node)] = []
        for (index, item) in items.enumerated() where !tooManyProblems {
            let label = item["name"]?.scalar.map { "row `\(abbreviated($0.string))`" } ?? "row \(index + 1)"
            guard let f = parseFields(of: item, spec: Fields.row, what: label) else { continue }
            let name = f["name"].flatMap(parseRowName)
            if let name, let nameNode = f["name"] {
                if let line = firstLine[name] {
                    report(nameNode, "duplicate row name `\(name)` (first on line \(line))",
                           expected: "row names unique within a table", fix: "rename or remove one of the two rows")
                } else {
                    firstLine[name] = location(nameNode).line
                    names.append(name)
                }
            }
            let overrides = f["overrides"].flatMap { parseOverrides($0, base: base) }
            let paper = f["paper"].flatMap(parsePaperValue)
            let paperSource = f["paper_source"].flatMap { parseString($0, field: "paper_source", in: Fields.row) }
            let note = f["note"].flatMap { parseString($0, field: "note", in: Fields.row) }
            var rowClaims: [Claim] = []
            for (text, claimNode) in f["claim"].map(parseClaimTexts) ?? [] {
                guard let claim = Claim(parsing: text) else { reportUnknownClaim(text, at: claimNode); continue }
                if rowClaims.contains(claim) {
                    report(claimNode, "claim `\(abbreviated(text))` is listed twice", expected: "each claim once",
                           fix: "remove the repeated claim")
                }
                rowClaims.append(claim)
                if let name { claims.append((name, claim, claimNode)) }
            }
            if let name, let overrides, let paper, let paperSource {
                rows.append(ExperimentRow(name: name, overrides: overrides, paper: paper, paperSource: paperSource,
                                          claims: rowClaims, note: note, location: location(item)))
            }
        }
        for (row, claim, node) in claims where !tooManyProblems {
            guard let target = claim.targetRow else { continue }
            if target == row {
                report(node, "claim `\(abbreviated(claim.description))` compares row `\(row)` with itself", expected: "another row of this table",
                       fix: "name the row it should be compared with")
            } else if firstLine[target] == nil {
                let hint = closest(to: target, among: names).map { "did you mean `\($0)`?" }
                    ?? "add a row named `\(abbreviated(target))` or correct the name"
                report(node, "claim `\(abbreviated(claim.description))` names no row of this table",
                       expected: "one of the rows \(listed(names.map { "`\($0)`" }))", fix: hint)
            }
        }
        return rows
    }

    /// `claim:` as texts with their nodes: one string, or a non-empty list of strings.
    private func parseClaimTexts(_ node: Node) -> [(String, Node)] {
        guard case let .sequence(items) = node else {
            return parseString(node, field: "claim", in: Fields.row).map { [($0, node)] } ?? []
        }
        if items.isEmpty {
            report(node, "`claim` is an empty list", expected: "a claim or a non-empty list of claims",
                   fix: "list at least one claim, or leave `claim:` out")
        }
        return items.compactMap { item in parseString(item, field: "claim", in: Fields.row).map { ($0, item) } }
    }

    private func reportUnknownClaim(_ text: String, at node: Node) {
        let singles = ["collapses", "does-not-collapse", "diverges"]
        let templates = ["within": "within <pts> of <row>` with a positive number, e.g. `within 1 of baseline",
                         "below": "below <row>`, e.g. `below baseline", "above": "above <row>`, e.g. `above baseline",
                         "not": "not more than <pts> below <row>` with a positive number, e.g. `not more than 1 below baseline"]
        let first = String(text.split(separator: " ").first ?? "")
        var fix = "write one of these forms"
        if let single = closest(to: text, among: singles) {
            fix = "did you mean `\(single)`?"
        } else if let word = closest(to: first, among: ["within", "below", "above", "not"]), let template = templates[word] {
            fix = "write it as `\(template)`"
        }
        report(node, "unknown claim `\(abbreviated(text))`", expected: "one of \(Claim.forms.map { "`\($0)`" }.joined(separator: ", "))",
               fix: fix)
    }

    // MARK: Overrides

    private func parseOverrides(_ node: Node, base: TrainingConfig?) -> [(key: String, value: ConfigValue)]? {
        if isNull(node) { return [] }
        guard case let .mapping(mapping) = node else {
            report(node, "`overrides` is \(describe(node))", expected: "a mapping of dotted keys to values, `{}` for none",
                   fix: "write e.g. `overrides: {loss.stop_gradient: false}`")
            return nil
        }
        var result: [(key: String, value: ConfigValue)] = []
        let before = diagnostics.count
        // The row's method decides which keys it has; an invalid `method` is reported below.
        var base = base
        if let methodNode = mapping.first(where: { $0.key.scalar?.string == ConfigKey.method.name })?.value,
           let value = configValue(methodNode), let withMethod = try? base?.applying([(ConfigKey.method.name, value)]) {
            base = withMethod
        }
        let method = base?.method ?? Methods.defaultName
        for (keyNode, valueNode) in mapping {
            guard case let .scalar(keyScalar) = keyNode else {
                report(keyNode, "an override key is \(describe(keyNode))", expected: "a dotted key such as `loss.stop_gradient`",
                       fix: "write `key: value` pairs")
                continue
            }
            let key = keyScalar.string
            guard let spec = ConfigKey.byName[key] else {
                let hint = closestKey(to: key).map { "did you mean `\($0)`?" }
                    ?? "valid keys: \(listed(ConfigKey.all.map(\.name)))"
                report(keyNode, "unknown override key `\(abbreviated(key))`",
                       expected: "a key of ConfigKey.all (listed in experiments/README.md)", fix: hint)
                continue
            }
            guard spec.applies(to: method) else {
                let own = ConfigKey.all.filter { $0.applies(to: method) }.map(\.name)
                report(keyNode, "`\(key)` is not a key of method `\(method)` (it belongs to \(spec.methods?.joined(separator: ", ") ?? "?"))",
                       expected: "a key of method `\(method)`: \(listed(own))",
                       fix: "set `method:` to the method it belongs to in this row's overrides, or remove it")
                continue
            }
            // The key table decides what a value may be: apply it to the protocol's config.
            guard let value = configValue(valueNode), base.map({ (try? $0.applying([(key, value)], checkConflicts: false)) != nil }) ?? true else {
                report(valueNode, "`\(key): \(shown(valueNode))` has the wrong type", expected: spec.expected,
                       fix: "replace `\(shown(valueNode))` with \(spec.expected)")
                continue
            }
            result.append((key, value))
        }
        // Keys that are fine one by one may contradict each other or the protocol (a batch larger
        // than its data set); reported at the value of the key named.
        if diagnostics.count == before, let base {
            do {
                _ = try base.applying(result)
            } catch let error as ConfigKeyError {
                let at = mapping.first { $0.key.scalar?.string == error.key }?.value ?? node
                report(at, "`\(error.key)` \(error.message)", expected: "settings that fit together and fit protocol `\(base.protocolName)`",
                       fix: "change or remove `\(error.key)`")
            } catch {
                report(node, "these overrides cannot run together: \(error)", expected: "settings that fit together",
                       fix: "change or remove one of them")
            }
        }
        return diagnostics.count == before ? result : nil
    }

    /// A YAML value as a `ConfigValue`: bool, int, finite number, string or a list of them.
    private func configValue(_ node: Node) -> ConfigValue? {
        switch node {
        case let .scalar(scalar):
            switch tag(node) {
            case Tag.Name.bool.rawValue: return node.bool.map(ConfigValue.bool)
            case Tag.Name.int.rawValue: return node.int.map(ConfigValue.int)
            case Tag.Name.float.rawValue: return node.float.flatMap { $0.isFinite ? ConfigValue.double($0) : nil }
            case Tag.Name.str.rawValue: return .string(scalar.string)
            default: return nil
            }
        case let .sequence(items):
            let values = items.compactMap(configValue)
            return values.count == items.count ? .list(values) : nil
        default:
            return nil
        }
    }

    // MARK: Scalars

    private func parsePaperValue(_ node: Node) -> PaperValue? {
        let expected = "a number or one of \(PaperValue.words.joined(separator: ", "))"
        var fix = "write the paper's number, e.g. `paper: 67.7`, or one of those words"
        if case let .scalar(scalar) = node {
            let t = tag(node)
            if t == Tag.Name.int.rawValue || t == Tag.Name.float.rawValue, let x = node.float ?? Double(scalar.string) {
                if x.isNaN { return .nan }
                if x.isFinite { return .number(x) }
            }
            if t == Tag.Name.str.rawValue {
                if let word = PaperValue(word: scalar.string) { return word }
                if scalar.style == .singleQuoted || scalar.style == .doubleQuoted, Double(scalar.string)?.isFinite == true {
                    fix = "write the number without quotes"
                } else if let word = closest(to: scalar.string, among: PaperValue.words) {
                    fix = "did you mean `\(word)`?"
                }
            }
        }
        report(node, "`paper: \(shown(node))` is not a paper value", expected: expected, fix: fix)
        return nil
    }

    private func parseIdentifier(_ node: Node) -> String? {
        guard let id = parseString(node, field: "id", in: Fields.table) else { return nil }
        guard id.count <= ExperimentFileLimits.maxIdLength else {
            report(node, "the id has \(id.count) characters", expected: "an id of at most \(ExperimentFileLimits.maxIdLength) characters",
                   fix: "shorten it, e.g. to `\(String(id.prefix(24)))`")
            return nil
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard let first = id.first, first.isLetter || first.isNumber, id.allSatisfy(allowed.contains) else {
            report(node, "`id: \(id)` is not a valid id", expected: "lowercase letters, digits and hyphens",
                   fix: "write e.g. `id: \(id.lowercased().map { allowed.contains($0) ? $0 : "-" }.map(String.init).joined())`")
            return nil
        }
        return id
    }

    private func parseProtocol(_ node: Node) -> String? {
        guard let name = parseString(node, field: "protocol", in: Fields.table) else { return nil }
        guard ExperimentTable.protocolNames.contains(name) else {
            let hint = closest(to: name, among: ExperimentTable.protocolNames).map { "did you mean `\($0)`?" }
                ?? "PROTOCOLS.md defines them"
            report(node, "unknown protocol `\(abbreviated(name))`",
                   expected: "one of \(ExperimentTable.protocolNames.joined(separator: ", "))", fix: hint)
            return nil
        }
        return name
    }

    private func parseMetrics(_ node: Node) -> [Metric]? {
        let names = Metric.reportable.map(\.key)
        guard case let .sequence(items) = node, !items.isEmpty else {
            report(node, "`metrics` is \(describe(node))", expected: "a non-empty list from \(names.joined(separator: ", "))",
                   fix: "write e.g. `metrics: [linear, knn]`")
            return nil
        }
        var metrics: [Metric] = []
        let before = diagnostics.count
        for item in items {
            guard case let .scalar(scalar) = item, let metric = Metric.reportable.first(where: { $0.key == scalar.string }) else {
                let hint = item.scalar.flatMap { closest(to: $0.string, among: names) }.map { "did you mean `\($0)`?" }
                    ?? "remove it"
                report(item, "unknown metric `\(shown(item))`", expected: "one of \(names.joined(separator: ", "))", fix: hint)
                continue
            }
            if metrics.contains(metric) {
                report(item, "metric `\(metric.key)` is listed twice", expected: "each metric once", fix: "remove one")
            }
            metrics.append(metric)
        }
        return diagnostics.count == before ? metrics : nil
    }

    private func parseSeeds(_ node: Node) -> Int? {
        guard tag(node) == Tag.Name.int.rawValue, let n = node.int, n >= 1 else {
            report(node, "`seeds: \(shown(node))` is not a seed count", expected: "an integer ≥ 1", fix: "write e.g. `seeds: 3`")
            return nil
        }
        return n
    }

    /// A row name: one line, no surrounding spaces (names are compared as written, and
    /// `--rows "baseline "` is trimmed), at most `maxNameLength` characters.
    private func parseRowName(_ node: Node) -> String? {
        guard let name = parseString(node, field: "name", in: Fields.row) else { return nil }
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.count > ExperimentFileLimits.maxNameLength {
            report(node, "the row name has \(name.count) characters",
                   expected: "a name of at most \(ExperimentFileLimits.maxNameLength) characters",
                   fix: "shorten it and move the details into `note`")
        } else if trimmed != name {
            report(node, "row name `\(name)` has spaces before or after it", expected: "a name without surrounding spaces",
                   fix: "write `name: \(trimmed)`")
        } else if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            report(node, "the row name contains a line break, tab or other control character",
                   expected: "a name on one line", fix: "write the name on one line with plain spaces")
        } else {
            return name
        }
        return nil
    }

    /// Any non-empty scalar, as written (so `name: 256` is the string "256").
    private func parseString(_ node: Node, field: String, in fields: [Field]) -> String? {
        if case let .scalar(scalar) = node, !isNull(node),
           !scalar.string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return scalar.string
        }
        let spec = Fields.named(field, in: fields)
        report(node, "`\(field)` is \(describe(node))", expected: spec.expected, fix: "write e.g. `\(spec.example)`")
        return nil
    }

    // MARK: Mappings

    /// The fields of a mapping by name; reports unknown fields (with the closest valid one) and
    /// missing required ones (at the mapping). Nil if the node is not a mapping.
    private func parseFields(of node: Node, spec: [Field], what: String) -> [String: Node]? {
        let valid = spec.map(\.name)
        guard case let .mapping(mapping) = node else {
            report(node, "\(what) is \(describe(node))", expected: "a mapping with the fields \(valid.joined(separator: ", "))",
                   fix: "write `field: value` lines; see experiments/README.md")
            return nil
        }
        var found: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case let .scalar(key) = keyNode else {
                report(keyNode, "a field name in \(what) is \(describe(keyNode))", expected: "a plain field name",
                       fix: "write `field: value` lines")
                continue
            }
            guard valid.contains(key.string) else {
                var hint = closest(to: key.string, among: valid).map { "did you mean `\($0)`?" } ?? "remove it or move it into `note`"
                if spec.contains(where: { $0.name == "overrides" }), ConfigKey.byName[key.string] != nil {
                    hint = "move it under `overrides:`"
                }
                report(keyNode, "unknown field `\(abbreviated(key.string))` in \(what)", expected: "one of \(valid.joined(separator: ", "))",
                       fix: hint)
                continue
            }
            found[key.string] = value
        }
        for field in spec where field.required && found[field.name] == nil {
            report(node, "\(what) has no `\(field.name)`", expected: "`\(field.name)`: \(field.expected)",
                   fix: "add `\(field.example)`")
        }
        return found
    }

    // MARK: Reporting

    private func location(_ node: Node?) -> SourceLocation {
        SourceLocation(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
    }

    /// True once more than `maxDiagnostics` problems were found: the rest of the file is not checked.
    var tooManyProblems: Bool { diagnostics.count > ExperimentFileLimits.maxDiagnostics }

    private func report(_ node: Node?, _ problem: String, expected: String, fix: String) {
        let limit = ExperimentFileLimits.maxDiagnostics
        if diagnostics.count < limit {
            diagnostics.append(Diagnostic(location: location(node), problem: problem, expected: expected, fix: fix))
        } else if diagnostics.count == limit {
            diagnostics.append(Diagnostic(location: location(node), problem: "more than \(limit) problems; the rest of the file was not checked",
                                          expected: "fewer problems", fix: "fix the ones above and check again"))
        }
    }

    private func tag(_ node: Node) -> String { node.tag.description }

    private func isNull(_ node: Node) -> Bool { tag(node) == Tag.Name.null.rawValue }

    /// How a node reads in a message.
    private func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence(let s): return s.isEmpty ? "an empty list" : "a list"
        case .alias: return "an alias"
        case .scalar(let s): return isNull(node) || s.string.isEmpty ? "empty" : "`\(abbreviated(s.string))`"
        }
    }

    private func shown(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return abbreviated(s.string)
        case .sequence: return "[…]"
        case .mapping: return "{…}"
        case .alias: return "*alias"
        }
    }

    // MARK: YAML errors

    /// A Yams error as a diagnostic at the position libyaml reports.
    private func yamlDiagnostic(_ error: Error) -> Diagnostic {
        let expected = "valid YAML"
        let fix = "check the indentation, `key: value` pairs and quotes at this position"
        func at(_ line: Int, _ column: Int) -> SourceLocation { SourceLocation(file: file, line: line, column: column) }
        guard let yaml = error as? YamlError else {
            return Diagnostic(location: at(1, 1), problem: "cannot parse the file (\(error))", expected: expected, fix: fix)
        }
        switch yaml {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let while_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return Diagnostic(location: at(mark.line, mark.column), problem: "YAML syntax error: \(problem)\(while_)",
                              expected: expected, fix: fix)
        case let .reader(problem, offset, _, _):
            let (line, column) = lineAndColumn(ofCharacterOffset: offset ?? 0)
            return Diagnostic(location: at(line, column), problem: "unreadable text: \(problem)", expected: "UTF-8 text",
                              fix: "save the file as UTF-8")
        case let .duplicatedKeysInMapping(duplicates, context):
            let key = duplicates.first ?? "?"
            let first = context.mark
            if let (line, column) = repetition(of: key, after: first.line, column: first.column) {
                return Diagnostic(location: at(line, column),
                                  problem: "`\(abbreviated(key))` is written twice in one mapping (first on line \(first.line))",
                                  expected: "each field or key once", fix: "remove or merge one of them")
            }
            return Diagnostic(location: at(first.line, first.column), problem: "`\(abbreviated(key))` is written twice in one mapping",
                              expected: "each field or key once", fix: "remove or merge one of them")
        default:
            return Diagnostic(location: at(1, 1), problem: "cannot parse the file (\(yaml))", expected: expected, fix: fix)
        }
    }

    private func lineAndColumn(ofCharacterOffset offset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    /// Where a block-mapping key written first at (line, column) is written again, if it is on a
    /// later line at the same column of the same mapping.
    private func repetition(of key: String, after line: Int, column: Int) -> (Int, Int)? {
        let lines = text.components(separatedBy: "\n")
        for index in line..<max(line, lines.count) {
            let scalars = Array(lines[index].unicodeScalars)
            guard let firstNonSpace = scalars.firstIndex(where: { $0 != " " }), scalars[firstNonSpace] != "#" else { continue }
            if firstNonSpace < column - 1 { break }  // the mapping ended
            guard firstNonSpace == column - 1 else { continue }
            var rest = String(String.UnicodeScalarView(scalars[firstNonSpace...]))
            guard rest.hasPrefix(key) else { continue }
            rest = String(rest.dropFirst(key.count)).trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix(":") { return (index + 1, column) }
        }
        return nil
    }
}

/// A value as messages quote it: at most 60 characters.
func abbreviated(_ text: String) -> String {
    text.count > 60 ? String(text.prefix(57)) + "…" : text
}
