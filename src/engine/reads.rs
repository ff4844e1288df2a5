//! What a policy reads, found by static analysis of its modules at
//! activation: which parts of `input` its rules can look at, and whether it
//! calls a builtin whose answer is not a function of input and data (the
//! clock, randomness, the network, the runtime). The decision cache keys on
//! the first and refuses to cache the second.
//!
//! The analysis is sound by over-approximation:
//! - a reference `input.a.b[x]…` reads the whole subtree at `a.b` (the
//!   static prefix), so aliases (`r := input.a`) and later indexing are
//!   covered by the prefix;
//! - `input` used as a value (`walk(input)`, `x := input`), a dynamic key at
//!   the top (`input[k]`), or any expression form the analysis does not know
//!   reads the whole input;
//! - rules that only rename part of the input (`obj := input.request.object`,
//!   `import input.request as req`) are aliases: a use `obj.spec.x` in the
//!   package reads `request.object.spec.x`, so policies can name the object
//!   without reading all of it;
//! - the dependency cone of an entry point is computed per rule: the rules
//!   the path names or that lie under it, then, to a fixed point, every rule
//!   an included rule refers to by name in its package or through a
//!   `data.…` reference or import; a dynamic `data[…]` reference includes
//!   every rule.
//!
//! Each rule's summary also records where regorus's VM would answer it
//! differently from OPA ([`super::vm_gaps`]); the same cone tells which
//! entry points must stay on the interpreter.

use std::collections::{BTreeSet, HashMap, HashSet};

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

use super::expr_walk::{declared_in_expr, declared_in_query, location_of, visit};
use super::vm_gaps::{self, GapKind, VmGap};
use crate::location::Location;

/// Builtins whose result is not a function of input and data.
const NONDETERMINISTIC: [&str; 10] = [
    "time.now_ns",
    "rand.intn",
    "uuid.rfc4122",
    "uuid.v4",
    "http.send",
    "opa.runtime",
    "net.lookup_ip_addr",
    "io.jwt.decode_verify",
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
];

/// The parts of `input` a policy can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputReads {
    /// Only the subtrees at these paths (none: input is not read at all).
    Paths(BTreeSet<Vec<String>>),
    /// Any of it.
    Whole,
}

impl InputReads {
    fn add(&mut self, path: Vec<String>) {
        if path.is_empty() {
            *self = InputReads::Whole;
        } else if let InputReads::Paths(paths) = self {
            paths.insert(path);
        }
    }

    fn merge(&mut self, other: &InputReads) {
        match other {
            InputReads::Whole => *self = InputReads::Whole,
            InputReads::Paths(more) => {
                for path in more {
                    self.add(path.clone());
                }
            }
        }
    }

    /// The paths with every path that lies under another one removed.
    pub fn minimal(&self) -> Option<Vec<Vec<String>>> {
        let InputReads::Paths(paths) = self else {
            return None;
        };
        let mut kept: Vec<Vec<String>> = Vec::new();
        for path in paths {
            // Sorted order puts a prefix right before the paths under it.
            if kept.last().is_some_and(|last| path.starts_with(last)) {
                continue;
            }
            kept.push(path.clone());
        }
        Some(kept)
    }
}

/// The read paths as a tree: a node is either read whole, or only the
/// children listed.
#[derive(Debug, Clone, Default)]
pub struct ReadTree {
    /// Read entirely.
    pub whole: bool,
    /// The children read, sorted by key.
    pub children: Vec<(String, ReadTree)>,
}

impl ReadTree {
    /// The tree of what `reads` selects.
    pub fn new(reads: &InputReads) -> ReadTree {
        let mut root = ReadTree::default();
        match reads.minimal() {
            None => root.whole = true,
            Some(paths) => {
                for path in paths {
                    let mut node = &mut root;
                    for segment in path {
                        let at = match node
                            .children
                            .binary_search_by(|(k, _)| k.as_str().cmp(&segment))
                        {
                            Ok(at) => at,
                            Err(at) => {
                                node.children.insert(at, (segment, ReadTree::default()));
                                at
                            }
                        };
                        node = &mut node.children[at].1;
                    }
                    node.whole = true;
                    node.children.clear();
                }
            }
        }
        root
    }

    /// The child at `key`, with its position among the children.
    pub fn child(&self, key: &str) -> Option<(usize, &ReadTree)> {
        self.children
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| (at, &self.children[at].1))
    }
}

/// A call to a non-deterministic builtin, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nondeterminism {
    /// The builtin.
    pub builtin: String,
    /// Where it is called.
    pub location: Location,
}

/// What an entry point (or a module) reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    /// The parts of `input` it can read.
    pub input: InputReads,
    /// Non-deterministic builtins it can call.
    pub nondeterministic: Vec<Nondeterminism>,
}

impl Default for ReadSet {
    fn default() -> Self {
        ReadSet {
            input: InputReads::Paths(BTreeSet::new()),
            nondeterministic: Vec::new(),
        }
    }
}

impl ReadSet {
    /// Whether its decisions may be cached.
    pub fn deterministic(&self) -> bool {
        self.nondeterministic.is_empty()
    }

    /// Add everything `other` reads.
    pub fn merge(&mut self, other: &ReadSet) {
        self.input.merge(&other.input);
        for n in &other.nondeterministic {
            if !self.nondeterministic.contains(n) {
                self.nondeterministic.push(n.clone());
            }
        }
    }

    /// The same reads, rooted one level down: a read of `input.<from>.x`
    /// becomes a read of `<to>.x` (how Gatekeeper's `input.review` maps onto
    /// an AdmissionReview's `request`). Reads outside `from` are dropped;
    /// a read of all of `input` or of `from` itself reads all of `to`.
    pub fn rebased(&self, from: &str, to: &[&str], keep_others: bool) -> ReadSet {
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        let input = match &self.input {
            InputReads::Whole => {
                let mut paths = BTreeSet::new();
                paths.insert(to.clone());
                InputReads::Paths(paths)
            }
            InputReads::Paths(paths) => {
                let mut out = BTreeSet::new();
                for path in paths {
                    if path.first().map(String::as_str) == Some(from) {
                        let mut mapped = to.clone();
                        mapped.extend(path[1..].iter().cloned());
                        out.insert(mapped);
                    } else if keep_others {
                        out.insert(path.clone());
                    }
                }
                InputReads::Paths(out)
            }
        };
        ReadSet {
            input,
            nondeterministic: self.nondeterministic.clone(),
        }
    }
}

/// What one rule definition reads and refers to.
#[derive(Debug, Clone)]
pub struct RuleSummary {
    /// The rule's path below `data`: package, then the rule's name (and
    /// the static segments of a reference head).
    pub path: Vec<String>,
    /// How many leading segments of `path` are the package.
    pub package_len: usize,
    /// What its head and body read (an alias definition's value excluded:
    /// see `alias`).
    pub reads: ReadSet,
    /// Static prefixes of the `data` references it makes (its module's
    /// data imports included); an empty prefix stands for all of `data`.
    pub data_refs: Vec<Vec<String>>,
    /// Names it uses that may be rules of its own package.
    pub local_refs: BTreeSet<String>,
    /// When the definition is `name := input.a.b` (or an alias of an
    /// alias): the input paths it stands for. Uses of `name.x.y` in the
    /// package are resolved to `a.b.x.y`.
    pub alias: Vec<Vec<String>>,
    /// Where regorus's VM would answer it differently from OPA
    /// ([`super::vm_gaps`]).
    pub vm_gap: Option<VmGap>,
    /// Where the rule's head starts.
    pub location: Location,
}

/// The static part of each reference one rule makes to a rule or to
/// `data`, as a path below `data`, with where the reference is. Needed only
/// while summarising, to find references to part of a rule tree.
pub(super) type StaticRefs = Vec<(Vec<String>, Location)>;

/// Summarise every rule of an engine's modules, with each rule's static
/// references (in the same order): what [`super::recursion`] builds its
/// graph from.
pub(super) fn summarise_with_refs(
    engine: &mut regorus::Engine,
) -> (Vec<RuleSummary>, Vec<StaticRefs>) {
    let packages = engine.get_policy_package_components().unwrap_or_default();
    let modules = engine.get_modules();
    let modules: Vec<(&Module, Vec<String>)> = modules
        .iter()
        .map(|m| m.as_ref())
        .zip(packages.into_iter().map(|p| p.components))
        .collect();
    // Pass 1: alias definitions, per package, resolved to a fixed point.
    let mut aliases: HashMap<Vec<String>, HashMap<String, Vec<Vec<String>>>> = HashMap::new();
    for _ in 0..8 {
        let mut changed = false;
        for (module, package) in &modules {
            for rule in &module.policy {
                let Some((name, value)) = alias_definition(rule) else {
                    continue;
                };
                let Some((root, path)) = flatten(value) else {
                    continue;
                };
                let known = aliases.entry(package.clone()).or_default();
                let targets: Vec<Vec<String>> = if root == "input" {
                    vec![path]
                } else if let Some(prefixes) = known.get(&root) {
                    prefixes
                        .iter()
                        .map(|p| p.iter().chain(&path).cloned().collect())
                        .collect()
                } else {
                    continue;
                };
                let entry = known.entry(name).or_default();
                for target in targets {
                    if !entry.contains(&target) {
                        entry.push(target);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Pass 2: every rule, with its package's aliases resolved at use sites.
    let empty = HashMap::new();
    let mut out = Vec::new();
    let mut static_refs = Vec::new();
    for (module, package) in &modules {
        let package_aliases = aliases.get(package).unwrap_or(&empty);
        let mut module_aliases = package_aliases.clone();
        let mut import_refs = Vec::new();
        let mut data_imports = HashMap::new();
        for import in &module.imports {
            match flatten(&import.refr) {
                Some((root, path)) if root == "data" => {
                    let name = import
                        .r#as
                        .as_ref()
                        .map(|span| span.text().to_string())
                        .or_else(|| path.last().cloned());
                    if let Some(name) = name {
                        data_imports.insert(name, path.clone());
                    }
                    import_refs.push(path)
                }
                Some((root, path)) if root == "input" && !path.is_empty() => {
                    let name = import
                        .r#as
                        .as_ref()
                        .map(|span| span.text().to_string())
                        .or_else(|| path.last().cloned())
                        .unwrap_or_default();
                    module_aliases.entry(name).or_default().push(path);
                }
                _ => {}
            }
        }
        for rule in &module.policy {
            let mut locals = HashSet::new();
            if let Rule::Spec { head, bodies, .. } = rule.as_ref() {
                for body in bodies {
                    declared_in_query(&body.query, &mut locals);
                    if let Some(assign) = &body.assign {
                        declared_in_expr(&assign.value, &mut locals);
                    }
                }
                // Comprehensions in the head declare variables of their own
                // (`x := [x | some x in xs]`).
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        declared_in_expr(refr, &mut locals);
                        if let Some(assign) = assign {
                            declared_in_expr(&assign.value, &mut locals);
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        declared_in_expr(refr, &mut locals);
                        if let Some(key) = key {
                            declared_in_expr(key, &mut locals);
                        }
                    }
                    RuleHead::Func { assign, .. } => {
                        if let Some(assign) = assign {
                            declared_in_expr(&assign.value, &mut locals);
                        }
                    }
                }
            }
            let mut walker = Walker {
                locals,
                aliases: &module_aliases,
                reads: ReadSet::default(),
                data_refs: import_refs.clone(),
                local_refs: BTreeSet::new(),
                parameters: HashSet::new(),
                package,
                data_imports: &data_imports,
                static_refs: Vec::new(),
            };
            // A definition is an alias only when its value resolves to input
            // (a `name := data.x` definition is an ordinary rule).
            let definition = alias_definition(rule).filter(|(name, value)| {
                package_aliases.contains_key(name)
                    && flatten(value).is_some_and(|(root, _)| {
                        root == "input" || package_aliases.contains_key(&root)
                    })
            });
            walker.rule(rule, definition.is_some());
            let mut path = package.clone();
            path.extend(rule_name(rule));
            let alias = definition
                .and_then(|(name, _)| package_aliases.get(&name).cloned())
                .unwrap_or_default();
            out.push(RuleSummary {
                path,
                package_len: package.len(),
                reads: walker.reads,
                data_refs: walker.data_refs,
                local_refs: walker.local_refs,
                alias,
                vm_gap: vm_gaps::find(rule),
                location: location_of(head_ref_of(rule)),
            });
            static_refs.push(walker.static_refs);
        }
    }
    mark_rule_tree_prefixes(&mut out, &static_refs);
    (out, static_refs)
}

/// Give a VM gap to each rule that refers to part of a rule tree: a strict
/// prefix of the path of a rule whose head has two or more segments
/// (`p.q[k] := …` is read through `p` or `data.pkg`). regorus's VM reads
/// such a reference as the deeper rule's own value and drops the segments
/// in between; the interpreter builds the tree, as OPA does.
fn mark_rule_tree_prefixes(rules: &mut [RuleSummary], static_refs: &[StaticRefs]) {
    let mut prefixes: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    for rule in rules.iter() {
        if rule.path.len() >= rule.package_len + 2 {
            for n in 0..rule.path.len() {
                prefixes
                    .entry(rule.path[..n].to_vec())
                    .or_insert_with(|| rule.path.clone());
            }
        }
    }
    if prefixes.is_empty() {
        return;
    }
    for (rule, refs) in rules.iter_mut().zip(static_refs) {
        if rule.vm_gap.is_some() {
            continue;
        }
        rule.vm_gap = refs.iter().find_map(|(path, location)| {
            prefixes.get(path).map(|deeper| VmGap {
                variable: path.join("."),
                location: location.clone(),
                kind: GapKind::RuleTreePrefix(deeper.join(".")),
            })
        });
    }
}

/// `name := <reference>` with a plain name: a candidate alias.
fn alias_definition(rule: &Rule) -> Option<(String, &Expr)> {
    let Rule::Spec {
        head:
            RuleHead::Compr {
                refr,
                assign: Some(assign),
                ..
            },
        ..
    } = rule
    else {
        return None;
    };
    let Expr::Var { span, .. } = refr.as_ref() else {
        return None;
    };
    matches!(
        assign.value.as_ref(),
        Expr::RefDot { .. } | Expr::RefBrack { .. } | Expr::Var { .. }
    )
    .then(|| (span.text().to_string(), assign.value.as_ref()))
}

/// The reference a rule's head names it by.
fn head_ref_of(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

/// The static path of a rule's head (its name, then static segments).
fn rule_name(rule: &Rule) -> Vec<String> {
    match flatten(head_ref_of(rule)) {
        Some((root, mut path)) => {
            path.insert(0, root);
            path
        }
        None => Vec::new(),
    }
}

/// The reads of the entry point at `path` (segments after `data`): the
/// union over its dependency cone.
pub fn cone(rules: &[RuleSummary], path: &[String]) -> ReadSet {
    let mut reads = ReadSet::default();
    for (rule, reached) in cone_members(rules, path) {
        reads.merge(&rule.reads);
        // Named by the path, or reached through data.…: no use site
        // resolves its alias, so it reads all it stands for.
        if reached != Reached::Name {
            for prefix in &rule.alias {
                reads.input.add(prefix.clone());
            }
        }
    }
    reads
}

/// The first place in the dependency cone of `path` where regorus's VM
/// would answer differently from OPA, with the rule it is in.
pub fn cone_vm_gap<'a>(
    rules: &'a [RuleSummary],
    path: &[String],
) -> Option<(&'a RuleSummary, &'a VmGap)> {
    cone_members(rules, path)
        .into_iter()
        .find_map(|(rule, _)| rule.vm_gap.as_ref().map(|gap| (rule, gap)))
}

/// How a rule came into a dependency cone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// The entry point's path names it or lies above it.
    Path,
    /// Through a `data.…` reference or import.
    Data,
    /// By its name, from a rule of its package.
    Name,
}

/// The rules in the dependency cone of `path`: the rules the path names
/// directly or that lie under it, then, to a fixed point, every rule an
/// included rule refers to.
fn cone_members<'a>(rules: &'a [RuleSummary], path: &[String]) -> Vec<(&'a RuleSummary, Reached)> {
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut included = vec![false; rules.len()];
    let mut members = Vec::new();
    let mut queue: Vec<usize> = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if related(&rule.path, path) {
            included[index] = true;
            queue.push(index);
            members.push((rule, Reached::Path));
        }
    }
    while let Some(index) = queue.pop() {
        let rule = &rules[index];
        let package = &rule.path[..rule.package_len];
        for (other_index, other) in rules.iter().enumerate() {
            if included[other_index] {
                continue;
            }
            let by_data = rule
                .data_refs
                .iter()
                .any(|target| related(&other.path, target));
            let by_name = other.path.len() > other.package_len
                && &other.path[..other.package_len] == package
                && rule.local_refs.contains(&other.path[other.package_len]);
            if by_data || by_name {
                included[other_index] = true;
                queue.push(other_index);
                let reached = if by_data {
                    Reached::Data
                } else {
                    Reached::Name
                };
                members.push((other, reached));
            }
        }
    }
    members
}

/// `a.b["c"]` rooted at a variable: the variable and the static segments
/// up to the first non-literal index. `None` when the chain is not rooted at
/// a variable.
fn flatten(expr: &Expr) -> Option<(String, Vec<String>)> {
    let mut segments = Vec::new();
    let mut node = expr;
    loop {
        match node {
            Expr::RefDot { refr, field, .. } => {
                segments.push(Some(field.0.text().to_string()));
                node = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                segments.push(match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        value.as_string().ok().map(|s| s.to_string())
                    }
                    _ => None,
                });
                node = refr;
            }
            Expr::Var { span, .. } => {
                segments.reverse();
                let path = segments.into_iter().map_while(|s| s).collect();
                return Some((span.text().to_string(), path));
            }
            _ => return None,
        }
    }
}

struct Walker<'a> {
    /// Names the rule declares as its own variables (`x :=`, `some x`, …):
    /// they shadow the package's rules.
    locals: HashSet<String>,
    /// The package's aliases (and the module's `import input.…`).
    aliases: &'a HashMap<String, Vec<Vec<String>>>,
    reads: ReadSet,
    data_refs: Vec<Vec<String>>,
    local_refs: BTreeSet<String>,
    /// A function's parameter names: inside it they shadow the package's
    /// rules (an alias among them), so a use of one is not a read.
    parameters: HashSet<String>,
    /// The rule's package, below `data`.
    package: &'a [String],
    /// The module's `import data.…` names and the paths they stand for.
    data_imports: &'a HashMap<String, Vec<String>>,
    static_refs: StaticRefs,
}

impl Walker<'_> {
    /// Walk a rule; an alias definition's value is not a read of its own.
    fn rule(&mut self, rule: &Rule, is_alias: bool) {
        match rule {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        self.head_ref(refr);
                        if let Some(assign) = assign {
                            if is_alias {
                                self.alias_value(&assign.value);
                            } else {
                                self.expr(&assign.value);
                            }
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        self.head_ref(refr);
                        if let Some(key) = key {
                            self.expr(key);
                        }
                    }
                    RuleHead::Func {
                        refr, args, assign, ..
                    } => {
                        self.head_ref(refr);
                        for arg in args {
                            visit(arg, &mut |node| {
                                if let Expr::Var { span, .. } = node {
                                    self.parameters.insert(span.text().to_string());
                                }
                            });
                        }
                        if let Some(assign) = assign {
                            self.expr(&assign.value);
                        }
                    }
                }
                for body in bodies {
                    if let Some(assign) = &body.assign {
                        self.expr(&assign.value);
                    }
                    self.query(&body.query);
                }
            }
            Rule::Default { args, value, .. } => {
                for arg in args {
                    self.expr(arg);
                }
                self.expr(value);
            }
        }
    }

    /// A rule head's reference names the rule; only the expressions inside
    /// its brackets are evaluated.
    fn head_ref(&mut self, refr: &Expr) {
        let mut node = refr;
        loop {
            match node {
                Expr::RefDot { refr, .. } => node = refr,
                Expr::RefBrack { refr, index, .. } => {
                    self.expr(index);
                    node = refr;
                }
                _ => return,
            }
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => self.membership(key.as_deref(), value, collection),
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
                Literal::Every { domain, query, .. } => {
                    self.expr(domain);
                    self.query(query);
                }
            }
            for modifier in &stmt.with_mods {
                // The target is replaced, not read; the value is evaluated.
                self.expr(&modifier.r#as);
            }
        }
    }

    /// Record the static part of a reference rooted at `root` (a rule of
    /// the package, an imported path or `data`) as a path below `data`.
    fn static_ref(&mut self, root: &str, path: &[String], at: &Expr) {
        let mut full = match root {
            "input" => return,
            "data" => Vec::new(),
            name if self.parameters.contains(name) || self.locals.contains(name) => return,
            name => match self.data_imports.get(name) {
                Some(imported) => imported.clone(),
                None => {
                    let mut local = self.package.to_vec();
                    local.push(name.to_string());
                    local
                }
            },
        };
        full.extend(path.iter().cloned());
        self.static_refs.push((full, location_of(at)));
    }

    /// A use of `name` followed by `path`: a rule of the package, and when
    /// it is an alias, a read of what it stands for plus `path`.
    fn use_name(&mut self, name: &str, path: Vec<String>) {
        if self.parameters.contains(name) {
            return;
        }
        if let Some(prefixes) = self.aliases.get(name) {
            for prefix in prefixes {
                let mut full = prefix.clone();
                full.extend(path.iter().cloned());
                self.reads.input.add(full);
            }
        }
        self.local_refs.insert(name.to_string());
    }

    /// The value of an alias definition: its own reads are resolved at use
    /// sites, but what its brackets evaluate is read here.
    fn alias_value(&mut self, value: &Expr) {
        let mut node = value;
        loop {
            match node {
                Expr::RefDot { refr, .. } => node = refr,
                Expr::RefBrack { refr, index, .. } => {
                    self.expr(index);
                    node = refr;
                }
                Expr::Var { span, .. } => {
                    self.local_refs.insert(span.text().to_string());
                    return;
                }
                other => {
                    self.expr(other);
                    return;
                }
            }
        }
    }

    /// `object.get(<ref>, "key", default)` (or a literal path of keys)
    /// reads only `<ref>.key`: the idiom for optional fields.
    fn object_get(&mut self, fcn: &Expr, params: &[regorus::unstable::Ref<Expr>]) -> bool {
        if Self::call_name(fcn).as_deref() != Some("object.get") || params.len() != 3 {
            return false;
        }
        let literal = |e: &Expr| match e {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                value.as_string().ok().map(|s| s.to_string())
            }
            _ => None,
        };
        let keys: Option<Vec<String>> = match params[1].as_ref() {
            Expr::Array { items, .. } => items.iter().map(|i| literal(i)).collect(),
            other => literal(other).map(|k| vec![k]),
        };
        let (Some(keys), Some((root, path))) = (keys, flatten(&params[0])) else {
            return false;
        };
        if root == "data" {
            return false;
        }
        self.static_ref(&root, &path, &params[0]);
        let mut full = path;
        full.extend(keys);
        // Walk the object reference's own brackets, then read the key path.
        let mut node = params[0].as_ref();
        while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = node {
            if let Expr::RefBrack { index, .. } = node {
                self.expr(index);
            }
            node = refr;
        }
        if root == "input" {
            self.reads.input.add(full);
        } else {
            self.use_name(&root, full);
        }
        self.expr(&params[2]);
        true
    }

    /// `key, value in collection` (as a `some` literal or an expression).
    fn membership(&mut self, key: Option<&Expr>, value: &Expr, collection: &Expr) {
        if let Some(key) = key {
            self.expr(key);
        }
        self.expr(value);
        self.expr(collection);
    }

    fn call_name(fcn: &Expr) -> Option<String> {
        match flatten(fcn) {
            Some((root, path)) => {
                let mut name = root;
                for segment in path {
                    name.push('.');
                    name.push_str(&segment);
                }
                Some(name)
            }
            None => None,
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => {}
            Expr::Var { span, .. } => {
                match span.text() {
                    "input" => self.reads.input = InputReads::Whole,
                    "data" => self.data_refs.push(Vec::new()),
                    name => self.use_name(name, Vec::new()),
                }
                self.static_ref(span.text(), &[], expr);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for item in items {
                    self.expr(item);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.expr(key);
                    self.expr(value);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term);
                self.query(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                self.expr(key);
                self.expr(value);
                self.query(query);
            }
            Expr::Call {
                span, fcn, params, ..
            } => {
                if let Some(name) = Self::call_name(fcn) {
                    if NONDETERMINISTIC.contains(&name.as_str()) {
                        self.reads.nondeterministic.push(Nondeterminism {
                            builtin: name,
                            location: Location::new(
                                span.source.file().clone(),
                                span.line as usize,
                                span.col as usize,
                            ),
                        });
                    }
                }
                if self.object_get(fcn, params) {
                    return;
                }
                // A call through a reference (`data.lib.f(x)`) is a data
                // reference; plain names are builtins or rules of the package,
                // never local variables (which cannot be called).
                let locals = std::mem::take(&mut self.locals);
                self.reference(fcn);
                self.locals = locals;
                for param in params {
                    self.expr(param);
                }
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::RefDot { .. } | Expr::RefBrack { .. } => self.reference(expr),
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => self.membership(key.as_deref(), value, collection),
            // An expression form this analysis does not know: assume the
            // worst.
            #[allow(unreachable_patterns)]
            _ => {
                self.reads.input = InputReads::Whole;
                self.data_refs.push(Vec::new());
            }
        }
    }

    /// A reference chain: record what its root reads, then walk the
    /// expressions inside its brackets and, when it is not rooted at a
    /// variable, the expression it indexes.
    fn reference(&mut self, expr: &Expr) {
        let flat = flatten(expr);
        if let Some((root, path)) = &flat {
            self.static_ref(root, path, expr);
        }
        match flat {
            Some((root, path)) if root == "input" => self.reads.input.add(path),
            Some((root, path)) if root == "data" => self.data_refs.push(path),
            Some((root, path)) => self.use_name(&root, path),
            None => {}
        }
        let mut node = expr;
        loop {
            match node {
                Expr::RefDot { refr, .. } => node = refr,
                Expr::RefBrack { refr, index, .. } => {
                    self.expr(index);
                    node = refr;
                }
                Expr::Var { .. } => return,
                other => {
                    self.expr(other);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(modules: &[&str]) -> Vec<RuleSummary> {
        let mut engine = regorus::Engine::new();
        for (i, source) in modules.iter().enumerate() {
            engine
                .add_policy(format!("m{i}.rego"), source.to_string())
                .unwrap();
        }
        summarise_with_refs(&mut engine).0
    }

    fn reads(modules: &[&str], entry: &str) -> ReadSet {
        let path: Vec<String> = entry.split('.').map(str::to_string).collect();
        cone(&summaries(modules), &path)
    }

    fn paths(set: &ReadSet) -> Vec<String> {
        set.input
            .minimal()
            .expect("not whole")
            .iter()
            .map(|p| p.join("."))
            .collect()
    }

    #[test]
    fn static_prefixes_and_aliases() {
        let set = reads(
            &[r#"package a
import input.request.object as obj
allow if {
    some c in input.request.object.spec.containers
    c.image != ""
    input.request["namespace"] != "x"
    obj.metadata.name
    input.request.kind[k]
}
"#],
            "a.allow",
        );
        assert_eq!(
            paths(&set),
            [
                "request.kind",
                "request.namespace",
                "request.object.metadata.name",
                "request.object.spec.containers"
            ]
        );
        assert!(set.deterministic());
    }

    #[test]
    fn object_get_with_literal_keys_reads_only_the_key() {
        let set = reads(
            &[r#"package a
obj := input.request.object
x := object.get(obj.metadata, "name", "") if true
y := object.get(input.spec, ["a", "b"], 0) if true
z := object.get(input.other, input.key, 0) if true
"#],
            "a",
        );
        assert_eq!(paths(&set), ["key", "other", "request.object", "spec.a.b"]);
        let only_x = reads(
            &["package a\nobj := input.request.object\nx := object.get(obj.metadata, \"name\", \"\") if true\n"],
            "a.x",
        );
        assert_eq!(paths(&only_x), ["request.object.metadata.name"]);
    }

    #[test]
    fn whole_input_uses_are_found() {
        for body in [
            "x := input",
            "walk(input, [p, v])",
            "input[k] == 1",
            "count(input) > 0",
            "object.get(input, k, 1) == 1",
        ] {
            let set = reads(&[&format!("package a\nallow if {{ {body} }}\n")], "a.allow");
            assert_eq!(set.input, InputReads::Whole, "{body}");
        }
    }

    #[test]
    fn a_function_parameter_shadows_a_rule_of_the_same_name() {
        let module = "package p\n\
            obj := input.request.object\n\
            names := [n | some c in obj.spec.containers; n := field(c, \"name\")]\n\
            field(obj, key) := obj[key]\n";
        // `obj[key]` inside the function is its parameter, not a read of
        // the whole object through the alias.
        assert_eq!(
            paths(&reads(&[module], "p.names")),
            ["request.object.spec.containers"]
        );
    }

    #[test]
    fn the_cone_follows_data_references_and_imports() {
        let modules = [
            "package a\nimport data.lib.util\nallow if util.ok\n",
            "package lib.util\nok if input.user.name == data.b.admin\n",
            "package b\nadmin := \"ana\"\nunrelated if input.secret\n",
            "package c\nother if input.other\n",
        ];
        // Rules of package b that a.allow does not reach are not read.
        let set = reads(&modules, "a.allow");
        assert_eq!(paths(&set), ["user.name"]);
        assert_eq!(paths(&reads(&modules, "b")), ["secret"]);
        let set = reads(&modules, "c");
        assert_eq!(paths(&set), ["other"]);
        // A dynamic data reference reaches every module.
        let dynamic = [
            "package a\nallow if data[x].ok\n",
            "package c\nok if input.c\n",
        ];
        assert_eq!(paths(&reads(&dynamic, "a.allow")), ["c"]);
    }

    #[test]
    fn nondeterministic_builtins_are_located() {
        let set = reads(
            &["package a\nfresh if {\n  time.now_ns() > input.t\n}\n"],
            "a.fresh",
        );
        assert!(!set.deterministic());
        assert_eq!(set.nondeterministic[0].builtin, "time.now_ns");
        assert_eq!(set.nondeterministic[0].location.row, 3);
        let set = reads(
            &["package a\nx := time.parse_rfc3339_ns(input.at)\n"],
            "a.x",
        );
        assert!(set.deterministic());
    }

    #[test]
    fn rebasing_maps_gatekeeper_review_onto_the_request() {
        let set = reads(
            &["package k\nviolation contains {\"msg\": m} if { m := input.review.object.spec.x; input.parameters.y }\n"],
            "k.violation",
        );
        let mapped = set.rebased("review", &["request"], false);
        assert_eq!(paths(&mapped), ["request.object.spec.x"]);
    }
}
