"""The shared anti-collapse regularisers on hand-computed tensors."""

import math

import torch

from jepa_agent.regularizers import CovarianceLoss, SIGReg, VarianceLoss


def test_variance_hinge_by_hand():
    # column 0: values 0, 2 -> unbiased var 2, std sqrt(2 + eps) > 1 -> hinge 0
    # column 1: values 0, 1 -> unbiased var 0.5 -> hinge 1 - sqrt(0.5 + eps)
    z = torch.tensor([[0.0, 0.0], [2.0, 1.0]])
    expected = (0.0 + (1 - math.sqrt(0.5 + 1e-4))) / 2
    assert torch.isclose(VarianceLoss()(z), torch.tensor(expected), atol=1e-6)


def test_variance_hinge_of_collapsed_embeddings_is_one():
    z = torch.ones(8, 5)
    assert torch.isclose(VarianceLoss()(z), torch.tensor(1 - math.sqrt(1e-4)), atol=1e-6)


def test_covariance_mean_squared_off_diagonal_by_hand():
    # samples (0,0), (1,1), (2,2): cov matrix [[1, 1], [1, 1]] with the N - 1 normalisation
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    # two off-diagonal entries of 1: sum 2, divided by D (D - 1) = 2 (reference) or D = 2 (VICReg)
    assert torch.isclose(CovarianceLoss()(z), torch.tensor(1.0))
    assert torch.isclose(CovarianceLoss("vicreg")(z), torch.tensor(1.0))
    z3 = torch.cat([z, torch.tensor([[0.0], [0.0], [3.0]])], dim=1)  # 3rd column: cov with others 1.5, 1.5
    off = 2 * (1.0**2 + 1.5**2 + 1.5**2)
    assert torch.isclose(CovarianceLoss()(z3), torch.tensor(off / 6))
    assert torch.isclose(CovarianceLoss("vicreg")(z3), torch.tensor(off / 3))


def test_covariance_zero_for_decorrelated_columns():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert CovarianceLoss()(z).item() == 0.0


def test_epps_pulley_near_zero_on_gaussian_large_on_collapsed():
    gen = torch.Generator().manual_seed(0)
    gaussian = torch.randn(4096, 32, generator=gen)
    sig = SIGReg(num_slices=64)
    on_gaussian = sig(gaussian).item()
    on_collapsed = sig(torch.zeros(4096, 32)).item()  # every projection is the point mass at 0
    on_shrunk = sig(0.1 * gaussian).item()
    assert on_gaussian < 1e-3
    assert on_collapsed > 0.1 and on_shrunk > 0.1
    assert on_collapsed > 100 * on_gaussian


def test_epps_pulley_statistic_of_point_mass_matches_closed_form():
    # psi_hat = 1 for a point mass at 0: integrand phi (1 - phi)^2, integrated with the trapezoid rule
    sig = SIGReg(num_slices=1, num_knots=17, t_max=3.0)
    t = torch.linspace(-3, 3, 17)
    phi = torch.exp(-0.5 * t**2)
    expected = torch.trapezoid(phi * (1 - phi) ** 2, t)
    assert torch.isclose(sig.statistic(torch.zeros(10, 1))[0], expected, atol=1e-6)


def test_sigreg_slices_change_every_training_call_and_are_reproducible():
    z = torch.randn(64, 8)
    a, b = SIGReg(num_slices=4, seed=3), SIGReg(num_slices=4, seed=3)
    first = a(z)
    assert torch.equal(first, b(z))
    assert not torch.equal(a.directions(8, z.device), SIGReg(num_slices=4, seed=3).directions(8, z.device))
