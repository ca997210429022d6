using CsCheck;
using HugeFault.Tests.Properties;
using HugeFault.Fleet.Dram;

namespace HugeFault.Tests.Fleet;

public class EccEvaluatorTests
{
    private static readonly DramGeometry G = DramGeometry.Default;
    private static readonly DramAddressLayout L = new(G);
    private const double Mission = 7 * 8760.0;

    private static DramRankModel Model(EccScheme scheme, double weakened = 0, bool lane = false) =>
        new(G, FitProfile.Jaguar, 1.0, 7, 3, new EccOptions(scheme, weakened, lane));

    private static DramFault Fault(int chip, DramFaultMode mode, int bank = 0, int row = 0, int col = 0, int dq = 0,
        double start = 10, double end = Mission, DramFaultFlags extra = DramFaultFlags.None)
    {
        ulong wild = mode.WildMask(L, 9);
        var flags = extra | ((wild & L.DqMask) != 0 ? DramFaultFlags.MultiBit : DramFaultFlags.None);
        return new DramFault(new FaultFootprint(L.Compose(0, bank, row, col, dq).Value, wild), start, end, chip, mode, flags);
    }

    private static TrialOutcome Eval(EccScheme scheme, params DramFault[] faults) =>
        new RankEccEvaluator(Model(scheme)).Evaluate(faults.OrderBy(f => f.Start).ToArray());

    [Fact]
    public void A_trial_without_faults_has_no_outcome_under_every_code()
    {
        foreach (var s in Enum.GetValues<EccScheme>()) Assert.Equal(TrialOutcome.None, Eval(s));
    }

    [Fact]
    public void Without_ecc_any_single_bit_fault_is_an_uncorrectable_and_undetected_error()
    {
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable | TrialOutcome.Undetected,
            Eval(EccScheme.None, Fault(3, DramFaultMode.Bit)));
    }

    [Fact]
    public void Secded_corrects_one_bit_but_not_a_word_fault_spanning_all_dqs_of_a_x4_chip()
    {
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.SecDed, Fault(3, DramFaultMode.Bit)));
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable | TrialOutcome.Undetected,
            Eval(EccScheme.SecDed, Fault(3, DramFaultMode.Word)));
    }

    [Fact]
    public void Secded_fails_when_two_bit_faults_in_different_chips_meet_in_one_word()
    {
        var a = Fault(1, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 0);
        var sameWord = Fault(5, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 0, start: 20);
        var nextBeat = Fault(5, DramFaultMode.Bit, bank: 2, row: 9, col: 101, dq: 0, start: 20);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.SecDed, a, sameWord));
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.SecDed, a, nextBeat));
        // The same cell faulting twice is still one bad bit.
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.SecDed, a, Fault(1, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 0, start: 30)));
        // Three bad bits in one word exceed the guaranteed detection.
        var third = Fault(9, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 3, start: 25);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable | TrialOutcome.Undetected, Eval(EccScheme.SecDed, a, sameWord, third));
    }

    [Fact]
    public void Chipkill_corrects_any_fault_confined_to_one_chip()
    {
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.Chipkill, Fault(0, DramFaultMode.MultiRank)));
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.Chipkill, Fault(0, DramFaultMode.Bank, bank: 1), Fault(0, DramFaultMode.Bit, bank: 1, start: 50)));
    }

    [Fact]
    public void Chipkill_fails_when_a_bank_fault_and_a_bit_fault_in_another_chip_share_a_codeword()
    {
        var bank = Fault(0, DramFaultMode.Bank, bank: 4);
        var bitSameBank = Fault(7, DramFaultMode.Bit, bank: 4, row: 3000, col: 17, start: 99);
        var bitOtherBank = Fault(7, DramFaultMode.Bit, bank: 5, row: 3000, col: 17, start: 99);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.Chipkill, bank, bitSameBank));
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.Chipkill, bank, bitOtherBank));
    }

    [Fact]
    public void A_transient_fault_scrubbed_before_the_second_fault_arrives_is_harmless()
    {
        var transient = Fault(0, DramFaultMode.Bank, bank: 4, start: 10, end: 12, extra: DramFaultFlags.Transient);
        var later = Fault(7, DramFaultMode.Bit, bank: 4, start: 12.5);
        var during = Fault(7, DramFaultMode.Bit, bank: 4, start: 11.5);
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.Chipkill, transient, later));
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.Chipkill, transient, during));
    }

    [Fact]
    public void Three_chips_in_one_codeword_are_beyond_chipkill_detection()
    {
        var outcome = Eval(EccScheme.Chipkill,
            Fault(0, DramFaultMode.Bank, bank: 4),
            Fault(1, DramFaultMode.Row, bank: 4, row: 77, start: 20),
            Fault(2, DramFaultMode.Bit, bank: 4, row: 77, col: 5, start: 30));
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable | TrialOutcome.Undetected, outcome);
        // Row 78 is a different codeword for the row fault: two symbols at most anywhere.
        var twoAtMost = Eval(EccScheme.Chipkill,
            Fault(0, DramFaultMode.Bank, bank: 4),
            Fault(1, DramFaultMode.Row, bank: 4, row: 77, start: 20),
            Fault(2, DramFaultMode.Bit, bank: 4, row: 78, col: 5, start: 30));
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, twoAtMost);
    }

    [Fact]
    public void Adddc_spares_the_first_failed_chip_at_the_next_scrub_so_a_later_second_chip_is_corrected()
    {
        var bank = Fault(0, DramFaultMode.Bank, bank: 4, start: 10); // spared at the scrub at 12 h (scrub every 3 h)
        var afterSparing = Fault(7, DramFaultMode.Bit, bank: 4, start: 100);
        var beforeSparing = Fault(7, DramFaultMode.Bit, bank: 4, start: 11);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.Chipkill, bank, afterSparing));
        Assert.Equal(TrialOutcome.Fault, Eval(EccScheme.Adddc, bank, afterSparing));
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.Adddc, bank, beforeSparing));
    }

    [Fact]
    public void The_weakened_ecc_and_lane_knobs_turn_single_chip_faults_into_uncorrectable_errors()
    {
        var weak = Fault(2, DramFaultMode.Row, extra: DramFaultFlags.WeakEcc);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable, Eval(EccScheme.Chipkill, weak));
        var lane = Fault(2, DramFaultMode.MultiRank);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable,
            new RankEccEvaluator(Model(EccScheme.Chipkill, lane: true)).Evaluate([lane]));
    }

    [Fact]
    public void Any_set_of_faults_on_a_single_chip_never_gives_a_chipkill_uncorrectable_error()
    {
        var evaluator = new RankEccEvaluator(Model(EccScheme.Chipkill));
        var oneFault = Gen.Select(Gen.Int[0, DramFaultModes.Count - 1], Gen.ULong, Gen.Double[0, Mission], Gen.Bool,
            (mode, addr, start, transient) =>
            {
                var m = (DramFaultMode)mode;
                ulong wild = m.WildMask(L, 9);
                var flags = (transient ? DramFaultFlags.Transient : 0) | ((wild & L.DqMask) != 0 ? DramFaultFlags.MultiBit : 0);
                return new DramFault(new FaultFootprint(addr & L.ValidMask, wild), start, transient ? Math.Min(Mission, start + 3) : Mission, 5, m, flags);
            });
        Pbt.Run(Gen.Int[1, 6].SelectMany(n => oneFault.Array[n]), faults =>
        {
            var sorted = faults.OrderBy(f => f.Start).ToArray();
            Assert.Equal(TrialOutcome.Fault, evaluator.Evaluate(sorted));
        }, iter: 2000, stream: 38);
    }

    [Fact]
    public void The_verdict_dates_each_pattern_by_the_arrival_of_the_fault_that_completed_it()
    {
        var evaluator = new RankEccEvaluator(Model(EccScheme.SecDed));
        DramFault[] faults =
        [
            Fault(1, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 0, start: 5),
            Fault(2, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 1, start: 8),   // UE: 2 bits in the word
            Fault(4, DramFaultMode.Row, bank: 6, start: 40),                           // multi-bit: UE and undetected
            Fault(3, DramFaultMode.Bit, bank: 2, row: 9, col: 100, dq: 2, start: 20),  // 3 bits: undetected
        ];
        var verdict = evaluator.Judge(faults.OrderBy(f => f.Start).ToArray());
        Assert.Equal(8.0, verdict.FirstUncorrectableHours);
        Assert.Equal(20.0, verdict.FirstUndetectedHours);
        Assert.Equal(TrialOutcome.Fault | TrialOutcome.Uncorrectable | TrialOutcome.Undetected, verdict.Outcome);
    }
}
