//! The size rule: no function over 120 lines and no module (a source file,
//! less its inline test modules) over 700, outside tests and the demo
//! script. A long function is several stages without names; a long module
//! is several owners in one file. Run with `--nocapture` to see the largest
//! of each; `AIRLOCK_SIZES_ROOT` points it at another checkout.

use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

const FUNCTION_LIMIT: usize = 120;
const MODULE_LIMIT: usize = 700;
/// Exempt: `cargo xtask demo`, a script of commands in Rust.
const EXEMPT: &[&str] = &["xtask/src/main.rs::demo"];

#[derive(Debug)]
struct Size {
    name: String,
    lines: usize,
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        path.is_ident("test")
            || (path.is_ident("cfg")
                && attr
                    .parse_args::<syn::Meta>()
                    .is_ok_and(|meta| meta.path().is_ident("test")))
    })
}

fn lines(span: proc_macro2::Span) -> usize {
    span.end().line - span.start().line + 1
}

struct Sizes<'a> {
    file: &'a str,
    scope: Vec<String>,
    functions: Vec<Size>,
    /// Lines of inline test modules, not counted in the module's size.
    test_lines: usize,
}

impl Sizes<'_> {
    fn function(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let mut path = self.scope.clone();
        path.push(name.to_string());
        self.functions.push(Size {
            name: format!("{}::{}", self.file, path.join("::")),
            lines: lines(span),
        });
    }
}

impl<'ast> Visit<'ast> for Sizes<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_test(&item.attrs) {
            self.test_lines += lines(item.span());
            return;
        }
        self.scope.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.scope.pop();
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if is_test(&item.attrs) {
            self.test_lines += lines(item.span());
            return;
        }
        let span = item
            .sig
            .span()
            .join(item.block.span())
            .unwrap_or(item.span());
        self.function(&item.sig.ident, span);
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if is_test(&item.attrs) {
            return;
        }
        let ty = &item.self_ty;
        self.scope.push(quote_type(ty));
        syn::visit::visit_item_impl(self, item);
        self.scope.pop();
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        let span = item
            .sig
            .span()
            .join(item.block.span())
            .unwrap_or(item.span());
        self.function(&item.sig.ident, span);
        syn::visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            let span = item.sig.span().join(block.span()).unwrap_or(item.span());
            self.function(&item.sig.ident, span);
        }
        syn::visit::visit_trait_item_fn(self, item);
    }
}

fn quote_type(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(|| "?".to_owned(), |s| s.ident.to_string()),
        _ => "impl".to_owned(),
    }
}

/// Source files outside tests, benches and generated output.
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["builder", "xtask", "qemu-tests", "fuzz"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !["tests", "target", "benches", "corpus", "artifacts"].contains(&name.as_str()) {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn measure(root: &Path) -> (Vec<Size>, Vec<Size>) {
    let mut functions = Vec::new();
    let mut modules = Vec::new();
    for path in sources(root) {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.strip_prefix(root).unwrap().display().to_string();
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut sizes = Sizes {
            file: &file,
            scope: Vec::new(),
            functions: Vec::new(),
            test_lines: 0,
        };
        sizes.visit_file(&parsed);
        modules.push(Size {
            name: file.clone(),
            lines: text.lines().count() - sizes.test_lines,
        });
        functions.extend(sizes.functions);
    }
    functions.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.name.cmp(&b.name)));
    modules.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.name.cmp(&b.name)));
    (functions, modules)
}

fn workspace() -> PathBuf {
    std::env::var_os("AIRLOCK_SIZES_ROOT").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf()
        },
        PathBuf::from,
    )
}

#[test]
fn no_function_or_module_is_over_the_limit() {
    let (functions, modules) = measure(&workspace());
    eprintln!("largest functions:");
    for size in functions.iter().take(10) {
        eprintln!("  {:5} {}", size.lines, size.name);
    }
    eprintln!("largest modules:");
    for size in modules.iter().take(10) {
        eprintln!("  {:5} {}", size.lines, size.name);
    }
    let over: Vec<String> = functions
        .iter()
        .filter(|s| s.lines > FUNCTION_LIMIT && !EXEMPT.contains(&s.name.as_str()))
        .map(|s| format!("function {} has {} lines", s.name, s.lines))
        .chain(
            modules
                .iter()
                .filter(|s| s.lines > MODULE_LIMIT)
                .map(|s| format!("module {} has {} lines", s.name, s.lines)),
        )
        .collect();
    assert!(
        over.is_empty(),
        "over the limits ({FUNCTION_LIMIT} lines a function, {MODULE_LIMIT} a module):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_measure_sees_long_functions_and_skips_tests() {
    let dir = tempfile_dir();
    let body = "    let x = 1;\n".repeat(130);
    std::fs::create_dir_all(dir.join("builder/a/src")).unwrap();
    std::fs::write(
        dir.join("builder/a/src/lib.rs"),
        format!(
            "fn long() {{\n{body}}}\nstruct S;\nimpl S {{\n    fn short(&self) {{}}\n}}\n#[cfg(test)]\nmod tests {{\n    fn helper() {{\n{body}    }}\n}}\n"
        ),
    )
    .unwrap();
    let (functions, modules) = measure(&dir);
    let names: Vec<(&str, usize)> = functions
        .iter()
        .map(|s| (s.name.as_str(), s.lines))
        .collect();
    assert_eq!(
        names,
        [
            ("builder/a/src/lib.rs::long", 132),
            ("builder/a/src/lib.rs::S::short", 1)
        ]
    );
    assert_eq!(modules[0].lines, 132 + 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder (xtask uses only the standard library).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-sizes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
