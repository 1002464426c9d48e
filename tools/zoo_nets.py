"""Two hand-written networks for the model zoo: a DARTS-style cell network and a
RepVGG-style network in its training-time (multi-branch) form.

Neither ships with torchvision, yet both stress graph shapes the torchvision
models do not: DARTS cells fan out into many small parallel branches (dilated
depthwise convolutions, 3x3 pools with padding, strided slices, concats), and
RepVGG blocks add three parallel branches, one of them a bare BatchNorm that
torch cannot fold into a convolution.
"""

import torch
import torch.nn as nn

# --- DARTS ------------------------------------------------------------------
# Follows the layout of NetworkImageNet from the DARTS paper (Liu et al., 2019)
# with a genotype chosen so every candidate op appears in a normal cell and in
# a reduction cell, rather than the searched DARTS_V2 genotype (which uses
# only sep_conv_3x3, dil_conv_3x3, max_pool and skip_connect).


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (possibly dilated) conv, pointwise conv, BN."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding,
                      dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """Two undilated DilConvs; only the first one strides."""

    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1),
            DilConv(c_in, c_out, kernel, 1, padding, 1),
        )


class FactorizedReduce(nn.Module):
    """Halves the resolution with two 1x1 stride-2 convs, the second shifted by
    one pixel, so no input pixel is skipped entirely. Exports as Slice + Concat."""

    def __init__(self, c_in, c_out):
        super().__init__()
        assert c_out % 2 == 0
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


def make_darts_op(name, c, stride):
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2)
    if name == "dil_conv_3x3_d4":
        return DilConv(c, c, 3, stride, 4, 4)
    raise ValueError(f"unknown DARTS op {name}")


# (op, input index) pairs, two per intermediate node; inputs 0 and 1 are the
# two previous cells' outputs, 2.. are earlier nodes of the same cell.
DARTS_NORMAL = [
    ("sep_conv_3x3", 0), ("sep_conv_5x5", 1),
    ("dil_conv_3x3", 0), ("skip_connect", 1),
    ("avg_pool_3x3", 1), ("sep_conv_3x3", 2),
    ("dil_conv_3x3_d4", 3), ("max_pool_3x3", 0),
]
DARTS_REDUCE = [
    ("max_pool_3x3", 0), ("sep_conv_5x5", 1),
    ("avg_pool_3x3", 1), ("skip_connect", 0),
    ("skip_connect", 2), ("dil_conv_3x3", 1),
    ("sep_conv_3x3", 3), ("max_pool_3x3", 1),
]
DARTS_CONCAT = [2, 3, 4, 5]


class DartsCell(nn.Module):
    def __init__(self, genotype, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.indices = [index for _, index in genotype]
        self.ops = nn.ModuleList(
            make_darts_op(name, c, 2 if reduction and index < 2 else 1)
            for name, index in genotype)
        self.multiplier = len(DARTS_CONCAT)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(0, len(self.ops), 2):
            a = self.ops[i](states[self.indices[i]])
            b = self.ops[i + 1](states[self.indices[i + 1]])
            states.append(a + b)
        return torch.cat([states[i] for i in DARTS_CONCAT], dim=1)


class DartsNet(nn.Module):
    """ImageNet-layout DARTS network: a stride-8 stem, `layers` cells with
    reduction cells at 1/3 and 2/3 depth, global pool and a linear classifier.
    Sized below the paper's (C=48, 14 cells) to keep export and tests quick."""

    def __init__(self, c=32, layers=8, num_classes=1000):
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        c_prev_prev, c_prev, c_curr = c, c, c
        cells = []
        reduction_prev = True  # stem1 halved the resolution of stem0's output
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            genotype = DARTS_REDUCE if reduction else DARTS_NORMAL
            cell = DartsCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x):
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        out = self.global_pooling(s1)
        # view(size(0), -1) as the DARTS code does: exports as Shape/Gather/
        # Reshape, unlike torch.flatten which becomes a single Flatten.
        return self.classifier(out.view(out.size(0), -1))


# --- RepVGG -----------------------------------------------------------------
# RepVGG-A0 (Ding et al., 2021) before re-parameterisation.


def conv_bn(c_in, c_out, kernel, stride, padding):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
    )


class RepVGGBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.rbr_dense = conv_bn(c_in, c_out, 3, stride, 1)
        self.rbr_1x1 = conv_bn(c_in, c_out, 1, stride, 0)
        self.rbr_identity = (nn.BatchNorm2d(c_in) if c_in == c_out and stride == 1
                             else None)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.relu(out)


class RepVGGNet(nn.Module):
    def __init__(self, num_blocks=(2, 4, 14, 1), width=(0.75, 0.75, 0.75, 2.5),
                 num_classes=1000):
        super().__init__()
        c_in = min(64, int(64 * width[0]))
        blocks = [RepVGGBlock(3, c_in, 2)]
        for stage, (n, w) in enumerate(zip(num_blocks, width)):
            c_out = int(64 * 2 ** stage * w)
            for i in range(n):
                blocks.append(RepVGGBlock(c_in, c_out, 2 if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c_in, num_classes)

    def forward(self, x):
        out = self.gap(self.blocks(x))
        return self.linear(torch.flatten(out, 1))
