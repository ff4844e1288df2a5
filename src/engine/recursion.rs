//! Recursion between rules and functions, refused when a policy set is
//! compiled, as OPA refuses it (`rego_recursion_error`).
//!
//! regorus 0.14 accepts a recursive function (`f(x) := f(x)`, `fact(n)` on
//! input) and evaluates it until the worker's stack overflows, which
//! aborts the whole process; recursive rules fail only when evaluated. OPA
//! builds the graph of what each rule refers to and refuses every rule on
//! a cycle, naming the cycle. The graph here is the same: an edge from a
//! rule to every rule whose path the static part of one of its references
//! covers or enters (`data.pkg` reaches every rule of `pkg`, as in OPA),
//! with the names a rule declares for itself (`x :=`, `some x`) and a
//! function's parameters shadowing the package's rules.

use std::collections::{BTreeMap, VecDeque};

use super::reads::{RuleSummary, StaticRefs};
use super::PolicyError;

/// One error per rule or function on a cycle, at its first definition,
/// worded as OPA words it.
pub(super) fn find(rules: &[RuleSummary], refs: &[StaticRefs]) -> Vec<PolicyError> {
    // One node per rule path (a rule may have several definitions).
    let mut nodes: BTreeMap<&[String], usize> = BTreeMap::new();
    let mut first_definition = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        nodes.entry(&rule.path).or_insert_with(|| {
            first_definition.push(i);
            first_definition.len() - 1
        });
    }
    let paths: Vec<&[String]> = {
        let mut by_index = vec![&[][..]; nodes.len()];
        for (path, &index) in &nodes {
            by_index[index] = path;
        }
        by_index
    };
    let mut edges = vec![Vec::new(); nodes.len()];
    for (rule, rule_refs) in rules.iter().zip(refs) {
        let from = nodes[rule.path.as_slice()];
        for (target, _) in rule_refs {
            for (to, path) in paths.iter().enumerate() {
                if (path.starts_with(target) || target.starts_with(path))
                    && !edges[from].contains(&to)
                {
                    edges[from].push(to);
                }
            }
        }
    }
    let name = |node: usize| format!("data.{}", paths[node].join("."));
    let mut errors = Vec::new();
    for node in 0..nodes.len() {
        let Some(cycle) = shortest_cycle(&edges, node) else {
            continue;
        };
        let chain: Vec<String> = cycle.into_iter().map(name).collect();
        errors.push(PolicyError {
            message: format!(
                "rego_recursion_error: rule {} is recursive: {}",
                name(node),
                chain.join(" -> ")
            ),
            location: Some(rules[first_definition[node]].location.clone()),
        });
    }
    errors
}

/// The shortest path from `start` back to itself, both ends included.
fn shortest_cycle(edges: &[Vec<usize>], start: usize) -> Option<Vec<usize>> {
    // Breadth first from `start`; `came_from` leads each reached node back.
    let mut came_from: Vec<Option<usize>> = vec![None; edges.len()];
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &edges[node] {
            if next == start {
                let mut chain = vec![start];
                let mut at = node;
                while at != start {
                    chain.push(at);
                    at = came_from[at].expect("every reached node has a predecessor");
                }
                chain.push(start);
                chain.reverse();
                return Some(chain);
            }
            if came_from[next].is_none() {
                came_from[next] = Some(node);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(source: &str) -> Vec<String> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("t.rego".to_string(), source.to_string())
            .unwrap();
        let (rules, refs) = super::super::reads::summarise_with_refs(&mut engine);
        find(&rules, &refs).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_function_calling_itself_is_refused_at_its_definition() {
        assert_eq!(
            errors("package t.rec\nf(x) := f(x)\ny := f(1)\n"),
            ["t.rego:2:1: rego_recursion_error: rule data.t.rec.f is recursive: data.t.rec.f -> data.t.rec.f"]
        );
    }

    #[test]
    fn mutual_recursion_names_the_cycle_from_each_rule() {
        assert_eq!(
            errors("package t.m\na if b\nb if a\n"),
            [
                "t.rego:2:1: rego_recursion_error: rule data.t.m.a is recursive: data.t.m.a -> data.t.m.b -> data.t.m.a",
                "t.rego:3:1: rego_recursion_error: rule data.t.m.b is recursive: data.t.m.b -> data.t.m.a -> data.t.m.b",
            ]
        );
    }

    #[test]
    fn a_reference_to_the_own_package_is_recursive_as_in_opa() {
        let found = errors("package t.w\np contains x if { some x in data.t.w }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("data.t.w.p -> data.t.w.p"), "{found:?}");
    }

    #[test]
    fn recursion_through_a_longer_chain_and_data_imports() {
        let found = errors(
            "package t.c\nimport data.t.c.b as bee\na if bee\nb if c\nc if { data.t.c.a }\nd if a\n",
        );
        // a, b and c are on the cycle; d only reaches it.
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("data.t.c.a -> data.t.c.b -> data.t.c.c -> data.t.c.a"));
    }

    #[test]
    fn shadowing_names_and_parameters_are_not_references() {
        // Local variables and parameters named like rules, as OPA allows.
        assert!(errors(
            "package t.z\nx := 1\np if { x := 2; x > 1 }\nf(p) := p + x\nq if { some p in [1]; p > 0 }\nr if { every p in [1] { p > 0 } }\nx2 := [p | some p in [1]]\n"
        )
        .is_empty());
        // Ordinary dependencies without a cycle.
        assert!(
            errors("package t.ok\na if b\nb if c\nc := true\nf(x) := g(x)\ng(x) := x\n").is_empty()
        );
    }
}
