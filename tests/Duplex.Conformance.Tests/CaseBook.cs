using System.Text;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Conformance.Tests;

/// <summary>One conformance case: an id in the Autobahn TestSuite's numbering and what the fuzzer does.</summary>
public sealed record ConformanceCase(string Id, string Description, Func<Fuzzer, Task> Run, string? Extensions = null)
{
    public override string ToString() => $"{Id} {Description}";
}

/// <summary>
/// The cases, grouped and numbered after the Autobahn TestSuite's categories: 1 framing, 2 ping/pong,
/// 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 closing, 9 limits, 10 misc. Each runs
/// against an implementation that echoes every message with its type, in either role.
/// </summary>
public static class CaseBook
{
    public static IReadOnlyList<ConformanceCase> All { get; } = Build();

    public static ConformanceCase Get(string id) => All.First(c => c.Id == id);

    private static byte[] Bytes(int length, byte seed = 0xFE) => Enumerable.Repeat(seed, length).ToArray();

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    private static List<ConformanceCase> Build()
    {
        var cases = new List<ConformanceCase>();
        void Add(string id, string description, Func<Fuzzer, Task> run) => cases.Add(new ConformanceCase(id, description, run));
        void AddCompressed(string id, string description, string extensions, Func<Fuzzer, Task> run) =>
            cases.Add(new ConformanceCase(id, description, run, extensions));

        // 1.x framing: every length class, whole and in tiny TCP writes.
        int[] lengths = [0, 125, 126, 127, 128, 65535, 65536];
        foreach (var (opcode, group) in new[] { (Opcode.Text, 1), (Opcode.Binary, 2) })
        {
            for (int i = 0; i < lengths.Length; i++)
            {
                int length = lengths[i];
                Add($"1.{group}.{i + 1}", $"{opcode} message of {length} bytes", async f =>
                {
                    var payload = Bytes(length, (byte)'*');
                    await f.SendAsync(opcode, payload);
                    await f.ExpectMessageAsync(opcode, payload);
                    await f.CloseNormallyAsync();
                });
            }
            Add($"1.{group}.8", $"{opcode} message of 65536 bytes sent in chops of 997 bytes", async f =>
            {
                var payload = Bytes(65536, (byte)'*');
                await f.SendAsync(opcode, payload, chop: 997);
                await f.ExpectMessageAsync(opcode, payload);
                await f.CloseNormallyAsync();
            });
            Add($"1.{group}.9", $"{opcode} message of 1000 bytes sent one byte per TCP write", async f =>
            {
                var payload = Bytes(1000, (byte)'*');
                await f.SendAsync(opcode, payload, chop: 1);
                await f.ExpectMessageAsync(opcode, payload);
                await f.CloseNormallyAsync();
            });
        }

        // 2.x ping/pong.
        Add("2.1", "ping without payload gets a pong without payload", async f =>
        {
            await f.SendAsync(Opcode.Ping, []);
            await f.ExpectPongAsync(Array.Empty<byte>());
            await f.CloseNormallyAsync();
        });
        Add("2.2", "ping with a text payload", async f =>
        {
            await f.SendAsync(Opcode.Ping, Text("Hello, world!"));
            await f.ExpectPongAsync(Text("Hello, world!"));
            await f.CloseNormallyAsync();
        });
        Add("2.3", "ping with a binary payload", async f =>
        {
            byte[] payload = [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
            await f.SendAsync(Opcode.Ping, payload);
            await f.ExpectPongAsync(payload);
            await f.CloseNormallyAsync();
        });
        Add("2.4", "ping with a 125-byte payload", async f =>
        {
            await f.SendAsync(Opcode.Ping, Bytes(125));
            await f.ExpectPongAsync(Bytes(125));
            await f.CloseNormallyAsync();
        });
        Add("2.5", "ping with a 126-byte payload fails the connection", async f =>
        {
            await f.SendAsync(Opcode.Ping, Bytes(126));
            await f.ExpectCloseAsync(1002);
        });
        Add("2.6", "ping with a 125-byte payload sent one byte per write", async f =>
        {
            await f.SendAsync(Opcode.Ping, Bytes(125), chop: 1);
            await f.ExpectPongAsync(Bytes(125));
            await f.CloseNormallyAsync();
        });
        Add("2.7", "unsolicited pong without payload is ignored", async f =>
        {
            await f.SendAsync(Opcode.Pong, []);
            await f.ExpectSilenceAsync();
            await f.CloseNormallyAsync();
        });
        Add("2.8", "unsolicited pong with payload is ignored", async f =>
        {
            await f.SendAsync(Opcode.Pong, Text("unsolicited pong payload"));
            await f.ExpectSilenceAsync();
            await f.CloseNormallyAsync();
        });
        Add("2.9", "unsolicited pong, then ping: only the ping is answered", async f =>
        {
            await f.SendAsync(Opcode.Pong, Text("unsolicited pong payload"));
            await f.SendAsync(Opcode.Ping, Text("ping payload"));
            await f.ExpectPongAsync(Text("ping payload"));
            await f.CloseNormallyAsync();
        });
        Add("2.10", "10 pings in a row get 10 pongs in order", async f =>
        {
            for (int i = 0; i < 10; i++)
                await f.SendAsync(Opcode.Ping, Text($"payload-{i}"));
            for (int i = 0; i < 10; i++)
                await f.ExpectPongAsync(Text($"payload-{i}"));
            await f.CloseNormallyAsync();
        });
        Add("2.11", "10 pings in a row, each sent one byte per write", async f =>
        {
            for (int i = 0; i < 10; i++)
                await f.SendAsync(Opcode.Ping, Text($"payload-{i}"), chop: 1);
            for (int i = 0; i < 10; i++)
                await f.ExpectPongAsync(Text($"payload-{i}"));
            await f.CloseNormallyAsync();
        });

        // 3.x reserved bits: every combination fails with 1002, after echoing what came before.
        var rsvCases = new (string Id, byte Rsv, Opcode Opcode, bool ValidFirst, bool PingAfter, int Chop)[]
        {
            ("3.1", FrameHeader.Rsv1, Opcode.Text, false, false, 0),
            ("3.2", FrameHeader.Rsv2, Opcode.Text, true, false, 0),
            ("3.3", FrameHeader.Rsv3, Opcode.Text, true, true, 0),
            ("3.4", FrameHeader.Rsv1 | FrameHeader.Rsv2, Opcode.Text, true, true, 1),
            ("3.5", FrameHeader.Rsv1 | FrameHeader.Rsv3, Opcode.Binary, false, false, 0),
            ("3.6", FrameHeader.Rsv2 | FrameHeader.Rsv3, Opcode.Ping, false, false, 0),
            ("3.7", FrameHeader.Rsv1 | FrameHeader.Rsv2 | FrameHeader.Rsv3, Opcode.Close, false, false, 0),
        };
        foreach (var c in rsvCases)
        {
            Add(c.Id, $"RSV bits {c.Rsv >> 4:b3} on a {c.Opcode} frame{(c.ValidFirst ? " after a valid text" : "")}{(c.Chop > 0 ? ", sent in chops" : "")}", async f =>
            {
                if (c.ValidFirst)
                    await f.SendTextAsync("Hello, world!");
                var payload = c.Opcode == Opcode.Close ? Frames.ClosePayload(1000) : Text("Hello, world!");
                await f.SendRawAsync(f.Frame(c.Opcode, payload, rsv: c.Rsv), c.Chop);
                if (c.PingAfter)
                    await f.SendAsync(Opcode.Ping, []);
                if (c.ValidFirst)
                    await f.ExpectTextAsync("Hello, world!");
                await f.ExpectCloseAsync(1002);
            });
        }

        // 4.x reserved opcodes: non-control 3-7 and control 0xB-0xF fail with 1002.
        byte[] reserved = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF];
        for (int i = 0; i < reserved.Length; i++)
        {
            byte opcode = reserved[i];
            string id = opcode < 8 ? $"4.1.{i + 1}" : $"4.2.{i - 4}";
            bool withPayload = i % 2 == 1;
            bool validAround = i % 3 == 2;
            Add(id, $"reserved opcode {opcode}{(withPayload ? " with payload" : "")}{(validAround ? " between valid texts" : "")}", async f =>
            {
                if (validAround)
                    await f.SendTextAsync("Hello, world!");
                await f.SendRawAsync(f.Frame((Opcode)opcode, withPayload ? Text("reserved opcode payload") : []));
                if (validAround)
                    await f.SendAsync(Opcode.Ping, []);
                if (validAround)
                    await f.ExpectTextAsync("Hello, world!");
                await f.ExpectCloseAsync(1002);
            });
        }

        // 5.x fragmentation.
        Add("5.1", "ping in 2 fragments fails", async f =>
        {
            await f.SendAsync(Opcode.Ping, Text("fragment1"), fin: false);
            await f.SendAsync(Opcode.Continuation, Text("fragment2"));
            await f.ExpectCloseAsync(1002);
        });
        Add("5.2", "pong in 2 fragments fails", async f =>
        {
            await f.SendAsync(Opcode.Pong, Text("fragment1"), fin: false);
            await f.SendAsync(Opcode.Continuation, Text("fragment2"));
            await f.ExpectCloseAsync(1002);
        });
        foreach (var (id, chop) in new[] { ("5.3", 0), ("5.4", 1) })
        {
            Add(id, $"text in 2 fragments{(chop > 0 ? ", one byte per write" : "")}", async f =>
            {
                await f.SendAsync(Opcode.Text, Text("fragment1"), fin: false, chop: chop);
                await f.SendAsync(Opcode.Continuation, Text("fragment2"), chop: chop);
                await f.ExpectTextAsync("fragment1fragment2");
                await f.CloseNormallyAsync();
            });
        }
        foreach (var (id, opcode, chop) in new[] { ("5.5", Opcode.Text, 1), ("5.6", Opcode.Text, 0), ("5.7", Opcode.Binary, 0), ("5.8", Opcode.Binary, 1) })
        {
            Add(id, $"{opcode} in 2 fragments with a ping between them{(chop > 0 ? ", one byte per write" : "")}", async f =>
            {
                await f.SendAsync(opcode, Text("fragment1"), fin: false, chop: chop);
                await f.SendAsync(Opcode.Ping, Text("ping payload"), chop: chop);
                await f.SendAsync(Opcode.Continuation, Text("fragment2"), chop: chop);
                await f.ExpectPongAsync(Text("ping payload"));
                await f.ExpectMessageAsync(opcode, Text("fragment1fragment2"));
                await f.CloseNormallyAsync();
            });
        }
        foreach (var (id, fin, chop) in new[] { ("5.9", true, 0), ("5.10", true, 1), ("5.11", true, 7), ("5.12", false, 0), ("5.13", false, 1), ("5.14", false, 7) })
        {
            Add(id, $"continuation (FIN={(fin ? 1 : 0)}) with no message to continue, then a text{(chop > 0 ? $", chops of {chop}" : "")}", async f =>
            {
                await f.SendAsync(Opcode.Continuation, Text("non-continuation payload"), fin: fin, chop: chop);
                await f.SendTextAsync("Hello, world!", chop: chop);
                await f.ExpectCloseAsync(1002);
            });
        }
        foreach (var (id, chop) in new[] { ("5.15", 0), ("5.16", 1) })
        {
            Add(id, $"text in 2 fragments, then a continuation with no message{(chop > 0 ? ", one byte per write" : "")}", async f =>
            {
                await f.SendAsync(Opcode.Text, Text("fragment1"), fin: false, chop: chop);
                await f.SendAsync(Opcode.Continuation, Text("fragment2"), chop: chop);
                await f.SendAsync(Opcode.Continuation, Text("fragment3"), fin: false, chop: chop);
                await f.SendAsync(Opcode.Text, Text("fragment4"), chop: chop);
                await f.ExpectTextAsync("fragment1fragment2");
                await f.ExpectCloseAsync(1002);
            });
        }
        Add("5.17", "text frame without FIN, then a new text frame inside the message", async f =>
        {
            await f.SendAsync(Opcode.Text, Text("fragment1"), fin: false);
            await f.SendAsync(Opcode.Text, Text("fragment2"));
            await f.ExpectCloseAsync(1002);
        });
        Add("5.18", "binary frame without FIN, then a text frame inside the message", async f =>
        {
            await f.SendAsync(Opcode.Binary, Text("fragment1"), fin: false);
            await f.SendAsync(Opcode.Text, Text("fragment2"), fin: false);
            await f.ExpectCloseAsync(1002);
        });
        foreach (var (id, chop) in new[] { ("5.19", 0), ("5.20", 1) })
        {
            Add(id, $"text in 5 fragments with pings between, waiting between them{(chop > 0 ? ", one byte per write" : "")}", async f =>
            {
                for (int i = 1; i <= 5; i++)
                {
                    await f.SendAsync(i == 1 ? Opcode.Text : Opcode.Continuation, Text($"fragment{i}"), fin: i == 5, chop: chop);
                    if (i < 5)
                    {
                        await f.SendAsync(Opcode.Ping, Text($"pongme {i}!"), chop: chop);
                        await f.ExpectPongAsync(Text($"pongme {i}!"));
                    }
                }
                await f.ExpectTextAsync("fragment1fragment2fragment3fragment4fragment5");
                await f.CloseNormallyAsync();
            });
        }
        Add("5.21", "empty frames: text, continuation, continuation", async f =>
        {
            await f.SendAsync(Opcode.Text, [], fin: false);
            await f.SendAsync(Opcode.Continuation, [], fin: false);
            await f.SendAsync(Opcode.Continuation, []);
            await f.ExpectTextAsync("");
            await f.CloseNormallyAsync();
        });

        // 6.x UTF-8.
        int n = 0;
        foreach (string hex in Utf8Samples.Valid)
        {
            var bytes = Convert.FromHexString(hex);
            n++;
            Add($"6.1.{n}", $"valid UTF-8 [{hex}] in one frame", async f =>
            {
                await f.SendAsync(Opcode.Text, bytes);
                await f.ExpectMessageAsync(Opcode.Text, bytes);
                await f.CloseNormallyAsync();
            });
            Add($"6.2.{n}", $"valid UTF-8 [{hex}] with a frame per byte", async f =>
            {
                for (int i = 0; i < Math.Max(1, bytes.Length); i++)
                {
                    ReadOnlySpan<byte> piece = bytes.Length == 0 ? default : bytes.AsSpan(i, 1);
                    await f.SendAsync(i == 0 ? Opcode.Text : Opcode.Continuation, piece, fin: i >= bytes.Length - 1);
                }
                await f.ExpectMessageAsync(Opcode.Text, bytes);
                await f.CloseNormallyAsync();
            });
            Add($"6.3.{n}", $"valid UTF-8 [{hex}] in one frame, one byte per write", async f =>
            {
                await f.SendAsync(Opcode.Text, bytes, chop: 1);
                await f.ExpectMessageAsync(Opcode.Text, bytes);
                await f.CloseNormallyAsync();
            });
        }
        n = 0;
        foreach (string hex in Utf8Samples.Invalid)
        {
            var bytes = Convert.FromHexString(hex);
            n++;
            Add($"6.5.{n}", $"invalid UTF-8 [{hex}] in one frame fails with 1007", async f =>
            {
                await f.SendAsync(Opcode.Text, bytes);
                await f.ExpectCloseAsync(1007);
            });
            Add($"6.6.{n}", $"invalid UTF-8 [{hex}] with a frame per byte fails with 1007", async f =>
            {
                for (int i = 0; i < bytes.Length; i++)
                    await f.SendAsync(i == 0 ? Opcode.Text : Opcode.Continuation, bytes.AsSpan(i, 1), fin: i == bytes.Length - 1);
                await f.ExpectCloseAsync(1007);
            });
        }
        // 6.4: fail fast. The bad byte must fail the connection before the message is finished.
        byte[] part1 = Text("κόσμε"), part2 = [0xf4, 0x90, 0x80, 0x80], part3 = Text("edited");
        Add("6.4.1", "invalid UTF-8 in the second of 3 fragments fails before the third is sent", async f =>
        {
            await f.SendAsync(Opcode.Text, part1, fin: false);
            await f.ExpectSilenceAsync(50);
            await f.SendAsync(Opcode.Continuation, part2, fin: false);
            await f.ExpectCloseAsync(1007);
        });
        Add("6.4.2", "invalid byte in a fragment whose earlier bytes were valid fails at once", async f =>
        {
            await f.SendAsync(Opcode.Text, [.. part1, 0xf4], fin: false);
            await f.ExpectSilenceAsync(50);
            await f.SendAsync(Opcode.Continuation, [0x90, 0x80, 0x80, .. part3], fin: false);
            await f.ExpectCloseAsync(1007);
        });
        Add("6.4.3", "invalid UTF-8 inside one frame fails before the frame has fully arrived", async f =>
        {
            var frame = f.Frame(Opcode.Text, [.. part1, .. part2, .. Bytes(1000, (byte)'a')]);
            int cut = frame.Length - 1000 - part2.Length;
            await f.SendRawAsync(frame[..cut]);
            await f.ExpectSilenceAsync(50);
            await f.SendRawAsync(frame[cut..(cut + part2.Length)]);
            await f.ExpectCloseAsync(1007);
        });
        Add("6.4.4", "invalid UTF-8 inside one frame sent one byte per write fails early", async f =>
        {
            var frame = f.Frame(Opcode.Text, [.. part1, .. part2, .. Bytes(1000, (byte)'a')]);
            int cut = frame.Length - 1000;
            await f.SendRawAsync(frame[..cut], chop: 1);
            await f.ExpectCloseAsync(1007);
        });

        // 7.x closing.
        Add("7.1.1", "text, then close: the text is echoed, then the close", async f =>
        {
            await f.SendTextAsync("Hello World!");
            await f.ExpectTextAsync("Hello World!");
            await f.CloseNormallyAsync();
        });
        Add("7.1.2", "close twice: the second is ignored", async f =>
        {
            await f.SendCloseAsync(1000);
            await f.SendCloseAsync(1000);
            await f.ExpectCloseAsync(1000);
        });
        Add("7.1.3", "close, then ping: no pong", async f =>
        {
            await f.SendCloseAsync(1000);
            await f.SendAsync(Opcode.Ping, Text("Hello World!"));
            await f.ExpectCloseAsync(1000);
        });
        Add("7.1.4", "close, then text: not echoed", async f =>
        {
            await f.SendCloseAsync(1000);
            await f.SendTextAsync("Hello World!");
            await f.ExpectCloseAsync(1000);
        });
        Add("7.1.5", "fragment, close, continuation: the message is dropped", async f =>
        {
            await f.SendAsync(Opcode.Text, Text("fragment1"), fin: false);
            await f.SendCloseAsync(1000);
            await f.SendAsync(Opcode.Continuation, Text("fragment2"));
            await f.ExpectCloseAsync(1000);
        });
        Add("7.1.6", "large text, ping, then close in one burst", async f =>
        {
            var big = Bytes(256 * 1024, (byte)'B');
            await f.SendRawAsync([.. f.Frame(Opcode.Text, big), .. f.Frame(Opcode.Ping, Text("ping")), .. f.Frame(Opcode.Close, Frames.ClosePayload(1000))]);
            await f.ExpectMessageAsync(Opcode.Text, big);
            await f.ExpectPongAsync(Text("ping"));
            await f.ExpectCloseAsync(1000);
        });
        Add("7.3.1", "close without payload gets a close without payload", async f =>
        {
            await f.SendCloseAsync();
            await f.ExpectCloseAsync(1005);
        });
        Add("7.3.2", "close with a 1-byte payload fails with 1002", async f =>
        {
            await f.SendAsync(Opcode.Close, [0x03]);
            await f.ExpectCloseAsync(1002);
        });
        Add("7.3.3", "close 1000 without reason", async f =>
        {
            await f.SendCloseAsync(1000);
            await f.ExpectCloseAsync(1000);
        });
        Add("7.3.4", "close 1000 with a reason", async f =>
        {
            await f.SendCloseAsync(1000, "Hello World!");
            await f.ExpectCloseAsync(1000);
        });
        Add("7.3.5", "close 1000 with a 123-byte reason", async f =>
        {
            await f.SendCloseAsync(1000, new string('*', 123));
            await f.ExpectCloseAsync(1000);
        });
        Add("7.3.6", "close with a 124-byte reason (payload over 125) fails with 1002", async f =>
        {
            await f.SendAsync(Opcode.Close, Frames.ClosePayload(1000, new string('*', 124)));
            await f.ExpectCloseAsync(1002);
        });
        Add("7.5.1", "close reason that is not UTF-8 fails with 1007", async f =>
        {
            await f.SendAsync(Opcode.Close, [0x03, 0xe8, .. Text("κόσμε"), 0xed, 0xa0, 0x80, .. Text("edited")]);
            await f.ExpectCloseAsync(1007);
        });
        int[] validCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
        for (int i = 0; i < validCodes.Length; i++)
        {
            int code = validCodes[i];
            Add($"7.7.{i + 1}", $"valid close code {code} is echoed", async f =>
            {
                await f.SendCloseAsync(code);
                await f.ExpectCloseAsync(code);
            });
        }
        int[] invalidCodes = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
        for (int i = 0; i < invalidCodes.Length; i++)
        {
            int code = invalidCodes[i];
            Add($"7.9.{i + 1}", $"invalid close code {code} fails with 1002", async f =>
            {
                await f.SendAsync(Opcode.Close, Frames.ClosePayload(code));
                await f.ExpectCloseAsync(1002);
            });
        }

        // 9.x limits: large messages whole and in frames of many sizes, and many small messages.
        int[] sizes = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20];
        foreach (var (opcode, group) in new[] { (Opcode.Text, 1), (Opcode.Binary, 2) })
        {
            for (int i = 0; i < sizes.Length; i++)
            {
                int size = sizes[i];
                Add($"9.{group}.{i + 1}", $"{opcode} message of {size >> 10} KiB", async f =>
                {
                    var payload = Bytes(size, (byte)'*');
                    await f.SendAsync(opcode, payload);
                    await f.ExpectMessageAsync(opcode, payload, TimeSpan.FromSeconds(60));
                    await f.CloseNormallyAsync();
                });
            }
        }
        int[] frameSizes = [64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
        foreach (var (opcode, group) in new[] { (Opcode.Text, 3), (Opcode.Binary, 4) })
        {
            for (int i = 0; i < frameSizes.Length; i++)
            {
                int frameSize = frameSizes[i];
                Add($"9.{group}.{i + 1}", $"4 MiB {opcode} message in frames of {frameSize} bytes", async f =>
                {
                    var payload = Bytes(4 << 20, (byte)'*');
                    var stream = new MemoryStream();
                    for (int at = 0; at < payload.Length; at += frameSize)
                        stream.Write(f.Frame(at == 0 ? opcode : Opcode.Continuation, payload.AsSpan(at, frameSize), fin: at + frameSize == payload.Length));
                    await f.SendRawAsync(stream.ToArray());
                    await f.ExpectMessageAsync(opcode, payload, TimeSpan.FromSeconds(60));
                    await f.CloseNormallyAsync();
                });
            }
        }
        int[] chops = [64, 128, 256, 512, 1024, 2048];
        foreach (var (opcode, group) in new[] { (Opcode.Text, 5), (Opcode.Binary, 6) })
        {
            for (int i = 0; i < chops.Length; i++)
            {
                int chop = chops[i];
                Add($"9.{group}.{i + 1}", $"1 MiB {opcode} message in writes of {chop} bytes", async f =>
                {
                    var payload = Bytes(1 << 20, (byte)'*');
                    await f.SendAsync(opcode, payload, chop: chop);
                    await f.ExpectMessageAsync(opcode, payload, TimeSpan.FromSeconds(60));
                    await f.CloseNormallyAsync();
                });
            }
        }
        int[] small = [0, 16, 64, 256, 1024, 4096];
        foreach (var (opcode, group) in new[] { (Opcode.Text, 7), (Opcode.Binary, 8) })
        {
            for (int i = 0; i < small.Length; i++)
            {
                int size = small[i];
                Add($"9.{group}.{i + 1}", $"1000 {opcode} messages of {size} bytes, one round trip each", async f =>
                {
                    var payload = Bytes(size, (byte)'*');
                    for (int m = 0; m < 1000; m++)
                    {
                        await f.SendAsync(opcode, payload);
                        await f.ExpectMessageAsync(opcode, payload);
                    }
                    await f.CloseNormallyAsync();
                });
            }
        }

        // 10.x: a message split into frames of many sizes is put back together.
        Add("10.1.1", "64 KiB text in frames of 1 to 9000 bytes, varying", async f =>
        {
            // Fragments may split characters: only the whole message has to be valid UTF-8.
            var payload = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("héllo wörld ✓ ", 4000)));
            var stream = new MemoryStream();
            int at = 0, k = 0;
            int[] pattern = [1, 2, 3, 7, 125, 126, 127, 1000, 4096, 9000];
            while (at < payload.Length)
            {
                int size = Math.Min(pattern[k++ % pattern.Length], payload.Length - at);
                stream.Write(f.Frame(at == 0 ? Opcode.Text : Opcode.Continuation, payload.AsSpan(at, size), fin: at + size == payload.Length));
                at += size;
            }
            await f.SendRawAsync(stream.ToArray());
            await f.ExpectMessageAsync(Opcode.Text, payload);
            await f.CloseNormallyAsync();
        });

        // 12.x compression with different payloads (permessage-deflate with both contexts kept):
        // compressible text, incompressible binary, and messages split into compressed fragments.
        int[] compressedSizes = [16, 64, 256, 1024, 4096, 16384, 65536, 131072];
        for (int i = 0; i < compressedSizes.Length; i++)
        {
            int size = compressedSizes[i];
            AddCompressed($"12.1.{i + 1}", $"compressed text of {size} bytes, 20 times", "permessage-deflate", async f =>
            {
                for (int m = 0; m < 20; m++)
                {
                    var payload = ChatText(size, m);
                    await f.SendCompressedAsync(Opcode.Text, payload);
                    await f.ExpectMessageAsync(Opcode.Text, payload);
                }
                await f.CloseNormallyAsync();
            });
            AddCompressed($"12.2.{i + 1}", $"compressed random binary of {size} bytes, 10 times", "permessage-deflate", async f =>
            {
                var random = new Random(size);
                for (int m = 0; m < 10; m++)
                {
                    var payload = new byte[size];
                    random.NextBytes(payload);
                    await f.SendCompressedAsync(Opcode.Binary, payload);
                    await f.ExpectMessageAsync(Opcode.Binary, payload);
                }
                await f.CloseNormallyAsync();
            });
            AddCompressed($"12.3.{i + 1}", $"compressed text of {size} bytes in frames of 7 compressed bytes", "permessage-deflate", async f =>
            {
                for (int m = 0; m < 3; m++)
                {
                    var payload = ChatText(size, m);
                    await f.SendCompressedAsync(Opcode.Text, payload, fragment: 7);
                    await f.ExpectMessageAsync(Opcode.Text, payload);
                }
                await f.CloseNormallyAsync();
            });
        }

        // 13.x compression with different parameters: each combination, 20 chat messages and a 64 KiB text.
        string[] parameters =
        [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=15",
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; client_max_window_bits=15",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9; server_no_context_takeover; client_no_context_takeover",
        ];
        for (int i = 0; i < parameters.Length; i++)
        {
            AddCompressed($"13.{i + 1}.1", $"compressed messages with {parameters[i]}", parameters[i], async f =>
            {
                for (int m = 0; m < 20; m++)
                {
                    var payload = ChatText(200 + m * 37, m);
                    await f.SendCompressedAsync(Opcode.Text, payload);
                    await f.ExpectMessageAsync(Opcode.Text, payload);
                }
                var large = ChatText(65536, 99);
                await f.SendCompressedAsync(Opcode.Text, large);
                await f.ExpectMessageAsync(Opcode.Text, large);
                await f.CloseNormallyAsync();
            });
        }
        AddCompressed("13.12.1", "RSV1 on a continuation frame fails with 1002", "permessage-deflate", async f =>
        {
            await f.SendAsync(Opcode.Text, Text("abc"), fin: false);
            await f.SendAsync(Opcode.Continuation, Text("def"), rsv: FrameHeader.Rsv1);
            await f.ExpectCloseAsync(1002);
        });
        AddCompressed("13.12.2", "compressed data that does not inflate fails", "permessage-deflate", async f =>
        {
            await f.SendAsync(Opcode.Binary, [0xFF, 0xFF, 0xFF, 0x01, 0x02], rsv: FrameHeader.Rsv1);
            await f.ExpectCloseAsync(1007);
        });
        AddCompressed("13.12.3", "uncompressed and compressed messages interleave", "permessage-deflate", async f =>
        {
            for (int m = 0; m < 10; m++)
            {
                var payload = ChatText(300, m);
                if (m % 2 == 0)
                    await f.SendCompressedAsync(Opcode.Text, payload);
                else
                    await f.SendAsync(Opcode.Text, payload);
                await f.ExpectMessageAsync(Opcode.Text, payload);
            }
            await f.CloseNormallyAsync();
        });

        return cases;
    }

    // Chat-like JSON text of an exact byte length (ASCII), varying with the message number.
    private static byte[] ChatText(int size, int message)
    {
        var text = new StringBuilder();
        while (text.Length < size)
            text.Append($"{{\"type\":\"message\",\"channel\":\"lobby\",\"offset\":{message},\"user\":\"ada\",\"text\":\"hello {text.Length}\"}}");
        return Encoding.ASCII.GetBytes(text.ToString(0, size));
    }
}
