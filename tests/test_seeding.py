import torch

from hwnas.seeding import seeded, torch_generator


def test_seeded_repeats_its_draws_and_leaves_the_global_rng_as_it_was():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    with seeded(7):
        a = torch.rand(5)
        w = torch.nn.Linear(3, 2).weight.detach().clone()  # module inits take no generator
    assert torch.equal(state, torch.random.get_rng_state())
    with seeded(7):
        assert torch.equal(torch.rand(5), a)
        assert torch.equal(torch.nn.Linear(3, 2).weight, w)
    with seeded(8):
        assert not torch.equal(torch.rand(5), a)
    g1, g2 = torch_generator(7), torch_generator(7)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert torch.equal(state, torch.random.get_rng_state())
