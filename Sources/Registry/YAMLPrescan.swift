import CYaml
import Foundation

/// Limits that keep checking any experiment file fast, whatever it holds.
public enum ExperimentFileLimits {
    /// The largest experiment file read (the committed ones are a few KB).
    public static let maxBytes = 1 << 20
    /// Nesting of YAML lists and mappings (a table needs 4; Yams composes recursively).
    public static let maxDepth = 32
    /// A table id (it names files: results/<id>.md).
    public static let maxIdLength = 64
    /// A row name (a column of the markdown table).
    public static let maxNameLength = 200
    /// Values (YAML scalars) in one file: the committed tables have at most about 130 (15× headroom).
    public static let maxValues = 2_000
    /// Problems reported per file; past it the file is not checked further.
    public static let maxDiagnostics = 50
}

/// The scanner tokens that `Yams.compose` would act on before the checker sees a node: anchors
/// and aliases (expanded in place: `*a` repeated builds exponentially large trees, and Yams
/// hashes every mapping key while composing), tags (silently dropped on names and strings), and
/// nesting deep enough to exhaust the stack of Yams' recursive composer, and more values than
/// Yams composes quickly (about 20 µs each in a debug build). Reported here from
/// libyaml's scanner, which is linear in the text and never expands anything.
///
/// NOTE: `CYaml` is the libyaml copy inside Yams (the `Yams` product's own C target, pinned with
/// it in Package.swift); its token API is the only way to see anchors before composing.
func prescan(_ text: String, file: String) -> [Diagnostic] {
    var diagnostics: [Diagnostic] = []
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else { return [] }
    defer { yaml_parser_delete(&parser) }
    var utf8 = Array(text.utf8)
    utf8.withUnsafeMutableBufferPointer { buffer in
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        var depth = 0, values = 0
        while diagnostics.count < ExperimentFileLimits.maxDiagnostics {
            var token = yaml_token_t()
            // A syntax error is left to the composer, which reports it with its context.
            guard yaml_parser_scan(&parser, &token) == 1 else { return }
            defer { yaml_token_delete(&token) }
            let at = SourceLocation(file: file, line: Int(token.start_mark.line) + 1, column: Int(token.start_mark.column) + 1)
            switch token.type {
            case YAML_STREAM_END_TOKEN, YAML_NO_TOKEN:
                return
            case YAML_ANCHOR_TOKEN, YAML_ALIAS_TOKEN:
                let isAnchor = token.type == YAML_ANCHOR_TOKEN
                let name = string(isAnchor ? token.data.anchor.value : token.data.alias.value)
                diagnostics.append(Diagnostic(
                    location: at, problem: "YAML \(isAnchor ? "anchor `&" : "alias `*")\(name)` in an experiment file",
                    expected: "every value written out where it is used (anchors and aliases are refused: they can expand a small file without bound)",
                    fix: isAnchor ? "remove `&\(name)`" : "replace `*\(name)` with the value it stands for"))
            case YAML_TAG_TOKEN:
                let tag = string(token.data.tag.handle) + string(token.data.tag.suffix)
                guard !allowedTags.contains(tag) else { break }
                diagnostics.append(Diagnostic(
                    location: at, problem: "YAML tag `\(tag)` in an experiment file",
                    expected: "plain values (the only tags allowed are \(allowedTags.sorted().joined(separator: ", ")))",
                    fix: "remove `\(tag)`; write the value as it should be read"))
            case YAML_BLOCK_SEQUENCE_START_TOKEN, YAML_BLOCK_MAPPING_START_TOKEN, YAML_FLOW_SEQUENCE_START_TOKEN,
                 YAML_FLOW_MAPPING_START_TOKEN:
                depth += 1
                if depth > ExperimentFileLimits.maxDepth {
                    diagnostics.append(Diagnostic(
                        location: at, problem: "lists and mappings nested more than \(ExperimentFileLimits.maxDepth) deep",
                        expected: "a table → rows → overrides → values (4 levels)",
                        fix: "check the brackets and the indentation from here on"))
                    return
                }
            case YAML_SCALAR_TOKEN:
                values += 1
                if values > ExperimentFileLimits.maxValues {
                    diagnostics.append(Diagnostic(
                        location: at, problem: "more than \(ExperimentFileLimits.maxValues) values in one file",
                        expected: "a table of at most \(ExperimentFileLimits.maxValues) values (keys included)",
                        fix: "split the table into several files or check that this is an experiment file"))
                    return
                }
            case YAML_BLOCK_END_TOKEN, YAML_FLOW_SEQUENCE_END_TOKEN, YAML_FLOW_MAPPING_END_TOKEN:
                depth = max(0, depth - 1)
            default:
                break
            }
        }
    }
    return diagnostics
}

/// The core-schema tags, which only say what a plain value would be read as anyway.
private let allowedTags: Set<String> = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!seq", "!!map"]

private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String {
    guard let pointer else { return "" }
    let text = String(cString: pointer)
    return text.count > 40 ? String(text.prefix(40)) + "…" : text
}
