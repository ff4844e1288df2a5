//! Calls of functions that nothing defines, found when a policy set is
//! compiled.
//!
//! OPA refuses a module that calls an undefined function (a misspelt
//! builtin, `regex.mtch`, or a helper that was renamed) when it compiles
//! it. regorus 0.14 compiles such a module and fails only when the call is
//! evaluated ("could not find function"): a bundle with a typo would go
//! live and fail every decision that reaches the call, and on the VM an
//! error inside a rule body can even read as "no violation". The check
//! here resolves every call the way regorus does at evaluation (import
//! aliases first, then the package's and `data`'s functions, Portcullis's
//! extensions, then the builtins) and reports each one that resolves to
//! nothing, at the call.

use std::collections::{HashMap, HashSet};

use regorus::unstable::{Expr, Module, Rule, RuleHead, BUILTINS};

use super::expr_walk::{each_call, location_of, text_of};
use super::{cidr, PolicyError};

/// One error per call of an undefined function in `engine`'s modules.
pub fn find(engine: &mut regorus::Engine) -> Vec<PolicyError> {
    let packages = engine.get_policy_package_components().unwrap_or_default();
    let modules = engine.get_modules();
    let modules: Vec<(&Module, String)> = modules
        .iter()
        .map(|m| m.as_ref())
        .zip(packages.into_iter().map(|p| {
            std::iter::once("data".to_string())
                .chain(p.components)
                .collect::<Vec<_>>()
                .join(".")
        }))
        .collect();
    let mut functions = HashSet::new();
    for (module, package) in &modules {
        for rule in &module.policy {
            let name = match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Func { refr, .. },
                    ..
                } => refr,
                Rule::Default { refr, args, .. } if !args.is_empty() => refr,
                _ => continue,
            };
            functions.insert(format!("{package}.{}", text_of(name)));
        }
    }
    let mut errors = Vec::new();
    for (module, package) in &modules {
        let imports: HashMap<String, String> = module
            .imports
            .iter()
            .filter_map(|import| {
                let path = text_of(&import.refr);
                if !path.starts_with("data.") && path != "data" {
                    return None;
                }
                let alias = match &import.r#as {
                    Some(alias) => alias.text().to_string(),
                    None => path.rsplit('.').next()?.to_string(),
                };
                Some((alias, path.to_string()))
            })
            .collect();
        let defined = |name: &str| {
            let (first, rest) = name.split_once('.').unwrap_or((name, ""));
            let resolved = match imports.get(first) {
                Some(path) if rest.is_empty() => path.clone(),
                Some(path) => format!("{path}.{rest}"),
                None => name.to_string(),
            };
            let function = if resolved.starts_with("data.") {
                resolved.clone()
            } else {
                format!("{package}.{resolved}")
            };
            functions.contains(&function)
                || cidr::EXTENSIONS.contains(&resolved.as_str())
                || super::opa_builtins::is_added(&resolved)
                || resolved == "print"
                || BUILTINS.contains_key(resolved.as_str())
        };
        for rule in &module.policy {
            each_call(rule, &mut |call| {
                let Expr::Call { fcn, .. } = call else {
                    return;
                };
                let name = text_of(fcn);
                if !defined(name) {
                    errors.push(PolicyError {
                        message: if super::literal_types::is_opa_builtin(name) {
                            format!(
                                "undefined function {name}: an OPA builtin that Portcullis does \
                                 not provide (docs/opa-compatibility.md); compute it outside the \
                                 policy and pass the result in input or data"
                            )
                        } else {
                            format!("undefined function {name}")
                        },
                        location: Some(location_of(fcn)),
                    });
                }
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use crate::engine::tests::bundle_with;
    use crate::engine::{CompileError, EngineOptions, PolicySet};

    fn errors(files: &[(&str, &str)]) -> Vec<String> {
        match PolicySet::compile(
            &[bundle_with(files, serde_json::json!({}))],
            EngineOptions::default(),
        ) {
            Ok(_) => Vec::new(),
            Err(CompileError::Policies(errors)) => errors.iter().map(|e| e.to_string()).collect(),
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn calls_of_undefined_functions_are_refused_at_the_call() {
        let found = errors(&[(
            "p.rego",
            "package p\nimport rego.v1\nallow if regex.mtch(\"a\", input.x)\n\
             deny contains \"x\" if not startswth(input.y, \"z\")\n\
             names := [upper(n) | some n in input.ns; helpr(n)]\n\
             helper(n) if n != \"\"\n\
             tabbed if {\n\tnot lowr(input.y) == \"z\"\n}\n",
        )]);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].ends_with("p.rego:3:10: undefined function regex.mtch"),
            "{found:?}"
        );
        assert!(
            found[1].ends_with("p.rego:4:26: undefined function startswth"),
            "{found:?}"
        );
        assert!(
            found[2].ends_with("p.rego:5:42: undefined function helpr"),
            "{found:?}"
        );
        // regorus counts a tab as four columns.
        assert!(
            found[3].ends_with("p.rego:8:9: undefined function lowr"),
            "{found:?}"
        );
    }

    #[test]
    fn builtins_extensions_and_functions_of_any_package_resolve() {
        let main = "package p\nimport rego.v1\nimport data.lib.strings as s\nimport data.lib\n\
                    local(x) := x\n\
                    default fallback(_) := false\n\
                    allow if {\n\
                    \tlocal(1) == 1\n\
                    \tnot fallback(2)\n\
                    \ts.shout(\"a\") == \"A\"\n\
                    \tlib.strings.shout(\"b\") == \"B\"\n\
                    \tdata.lib.strings.shout(\"c\") == \"C\"\n\
                    \tnet.cidr_intersects(\"10.0.0.0/8\", \"10.1.0.0/16\")\n\
                    \tevery n in [1] { is_number(n) }\n\
                    \tcount([x | some x in [1]; print(x)]) == 1\n\
                    }\n";
        let lib = "package lib.strings\nimport rego.v1\nshout(x) := upper(x)\n";
        assert_eq!(
            errors(&[("p.rego", main), ("lib.rego", lib)]),
            Vec::<String>::new()
        );
    }
}
