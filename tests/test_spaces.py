"""S4: subnet counts, hash classes, mapping to NB101 specs, seeded sampling, the CLI."""
import json
import random
from collections import Counter

import pytest

from rankbench.cli import main
from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.spaces import Subnet, create_space, list_spaces

# REFERENCE.md: m=1: 3 subnets / 3 classes; m=2: 15 / 9; m=3: 63 / 19; m=4: 255 / 34
COUNTS = {1: (3, 3), 2: (15, 9), 3: (63, 19), 4: (255, 34)}


@pytest.mark.parametrize("m", sorted(COUNTS))
def test_subnet_and_hash_class_counts(m):
    space = create_space("s4", m=m)
    subnets = space.subnets()
    assert len(subnets) == len(set(subnets)) == COUNTS[m][0]
    assert len(space.hash_classes()) == COUNTS[m][1]


def test_isomorphic_subnets_share_a_hash_and_others_do_not():
    space = create_space("s4", m=4)
    # swapping which node holds which op is the same NB101 graph
    a = Subnet((CONV3X3, MAXPOOL3X3, None, None))
    b = Subnet((None, None, MAXPOOL3X3, CONV3X3))
    c = Subnet((CONV3X3, CONV3X3, None, None))
    assert a.hash == b.hash != c.hash
    # a hash class is exactly a multiset of ops
    for h, members in space.hash_classes().items():
        assert len({tuple(sorted(op for op in s.ops if op)) for s in members}) == 1


def test_subnet_spec_is_the_pruned_nb101_cell():
    s = Subnet((None, CONV1X1, None, MAXPOOL3X3))
    spec = s.spec
    # input -> 2 active nodes -> node 5 -> output: 5 vertices after pruning, 5 edges
    assert spec.num_vertices == 5 and spec.num_edges == 5
    assert spec.ops == ("input", CONV1X1, MAXPOOL3X3, CONV1X1, "output")
    assert spec.adjacency_string == "0110000010000100000100000"


def test_codes_round_trip_and_reject_bad_input():
    for s in create_space("s4", m=3).subnets():
        assert Subnet.from_code(s.code) == s
    with pytest.raises(ValueError, match="at least one active path"):
        Subnet((None, None))
    with pytest.raises(ValueError, match="unknown character"):
        Subnet.from_code("3x--")
    with pytest.raises(ValueError, match="m = 1..4"):
        create_space("s4", m=5)
    with pytest.raises(KeyError, match="unknown search space"):
        create_space("nope")
    assert "s4" in list_spaces()


def test_sampling_is_seeded_and_follows_the_public_code():
    space = create_space("s4", m=4)
    a = [space.sample(random.Random(7)).code for _ in range(1)]
    rng1, rng2 = random.Random(3), random.Random(3)
    assert [space.sample(rng1) for _ in range(50)] == [space.sample(rng2) for _ in range(50)]
    assert a == [space.sample(random.Random(7)).code]
    # m' uniform in 1..m: each number of paths about a quarter of the draws
    rng = random.Random(0)
    draws = [space.sample(rng) for _ in range(8000)]
    counts = Counter(s.num_paths for s in draws)
    assert all(abs(counts[k] / 8000 - 0.25) < 0.03 for k in range(1, 5))
    # every subnet can be drawn
    assert len(set(draws)) == 255


def test_per_cell_sampling_draws_one_subnet_per_cell():
    space = create_space("s4", m=4)
    shared = space.sample_arch(random.Random(0), 9, per_cell=False)
    per_cell = space.sample_arch(random.Random(0), 9, per_cell=True)
    assert isinstance(shared, Subnet)
    assert len(per_cell) == 9 and len(set(per_cell)) > 1


def test_cli_spaces_show_json(capsys):
    assert main(["spaces", "show", "s4", "--m", "2", "--json", "--width", "16"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 15 and len({r["hash"] for r in rows}) == 9
    for r in rows:
        assert set(r) >= {"adjacency", "ops", "hash", "params"}
        n = int(len(r["adjacency"]) ** 0.5)
        assert n * n == len(r["adjacency"]) and len(r["ops"]) == n
        assert r["params"] > 0


def test_cli_spaces_show_unknown_space(capsys):
    assert main(["spaces", "show", "s9"]) == 2
    assert "unknown search space" in capsys.readouterr().err


def test_s4_arch_protocol():
    space = create_space("s4", m=4)
    assert space.tag == "s4-m4" and space.settings() == {"m": 4} and space.group_column == "num_paths"
    s = Subnet.from_code("-3m1")
    assert s.name == s.code == "-3m1" and space.arch_from_name("-3m1") == s
    assert space.describe(s) == {"num_paths": 3}
    # a spec maps to the first subnet of its hash class; isomorphic specs to the same one
    first = space.hash_classes()[s.hash][0]
    assert space.arch_from_spec(s.spec) == space.arch_from_spec(Subnet.from_code("m31-").spec) == first
    with pytest.raises(ValueError, match="not in S4Space"):
        create_space("s4", m=1).arch_from_spec(s.spec)
    with pytest.raises(ValueError, match="this space has m=2"):
        create_space("s4", m=2).arch_from_name("3---")
    # a seeded sample of the candidates, kept in candidate order
    every = space.candidates()
    some = space.candidates(10, seed=1)
    assert len(some) == 10 and some == sorted(some, key=every.index) and some != space.candidates(10, seed=2)
    assert space.subnets() == every


def test_s4_m_is_the_space_setting():
    from rankbench.config import ConfigError, RunConfig, apply_overrides, load_preset

    for preset in ("quick", "paper"):
        cfg = load_preset(preset)
        assert cfg.space.name == "s4" and cfg.space.m == 4 and "m" not in cfg.to_dict()["model"]
    cfg = load_preset("quick")
    three = apply_overrides(cfg, ["space.m=3"])
    assert three.space.m == 3 and three.space.settings() == {"m": 3}
    assert three.training_fingerprint("cpu") != cfg.training_fingerprint("cpu")
    with pytest.raises(ConfigError, match="'space.m' now"):  # a moved field's old name says the new one
        apply_overrides(cfg, {"model.m": 3})
    assert not hasattr(three.model, "m") and not hasattr(three.model, "space")  # no compatibility properties
    with pytest.raises(ConfigError, match="m = 1..4"):
        apply_overrides(cfg, ["space.m=5"])
    with pytest.raises(ConfigError, match="no setting 'n'; known: m"):
        apply_overrides(cfg, ["space.n=3"])
    with pytest.raises(ConfigError, match="unknown search space 's9'"):
        apply_overrides(cfg, ["space.name=s9"])
    # a config written before [space] existed loads, with the same training fingerprint
    old = three.to_dict()
    old["model"] = {**old["model"], "space": "s4", "m": 3}
    del old["space"]
    loaded = RunConfig.from_dict(old)
    assert loaded == three and loaded.training_fingerprint("cpu") == three.training_fingerprint("cpu")
