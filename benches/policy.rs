//! Policy evaluation: Barbican's Queens rules, compiled once, checked per
//! request. Figures: docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};
use keywarden::context::Context;
use keywarden::model::{ProjectId, UserId};
use keywarden::policy::{Entity, Policy, Rule, Target};

fn ctx(roles: &[&str]) -> Context {
    Context::new(
        UserId::new("alice").unwrap(),
        ProjectId::new("p1").unwrap(),
        roles.iter().copied(),
    )
}

fn evaluation(c: &mut Criterion) {
    let policy = Policy::barbican_queens();
    let project = ProjectId::new("p1").unwrap();
    let creator = UserId::new("bob").unwrap();
    let mut g = c.benchmark_group("policy");
    for (label, roles) in [
        ("secret:decrypt as creator (allowed)", &["creator"][..]),
        ("secret:decrypt as audit (denied)", &["audit"][..]),
        ("secret:decrypt with no role (denied)", &[][..]),
    ] {
        let who = ctx(roles);
        g.bench_function(label, |b| {
            b.iter(|| {
                let target = Target::entity(Entity::Secret, &project, &creator)
                    .with_project_id(&who.project_id)
                    .with_read_acl(Entity::Secret, false, Some(true));
                policy.check("secret:decrypt", std::hint::black_box(&who), &target)
            })
        });
    }
    let text = "rule:all_but_audit and project:%(target.secret.project_id)s and not 'False':%(target.secret.read_project_access)s";
    g.bench_function("parse a secret:decrypt-sized rule", |b| {
        b.iter(|| Rule::parse(std::hint::black_box(text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
