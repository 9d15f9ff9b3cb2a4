using System.Runtime.InteropServices;

namespace Duplex.Protocol.Deflate;

/// <summary>
/// The system's zlib (libz.so.1 on Linux), called directly: the BCL's DeflateStream cannot set
/// window bits or memory level, nor reset a stream cheaply, and those are what keep
/// permessage-deflate's memory bounded per connection.
/// </summary>
internal static unsafe partial class ZLib
{
    private const string Library = "duplex-zlib";

    public const int Ok = 0, StreamEnd = 1, NeedDict = 2, DataError = -3, BufError = -5;
    public const int NoFlush = 0, SyncFlush = 2;
    public const int Deflated = 8, DefaultStrategy = 0;

    static ZLib()
    {
        NativeLibrary.SetDllImportResolver(typeof(ZLib).Assembly, static (name, assembly, path) =>
        {
            if (name != Library)
                return IntPtr.Zero;
            foreach (var candidate in new[] { "libz.so.1", "libz.so", "libz.1.dylib", "libz.dylib", "zlib1.dll", "z" })
            {
                if (NativeLibrary.TryLoad(candidate, assembly, path, out var handle))
                    return handle;
            }
            return IntPtr.Zero;
        });
    }

    /// <summary>zlib's z_stream (LP64 layout). Lives in native memory: zlib keeps a pointer to it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public byte* Msg;
        public void* State;
        public void* ZAlloc;
        public void* ZFree;
        public void* Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    private static readonly byte* Version = (byte*)Marshal.StringToHGlobalAnsi("1.2.11");

    public static int DeflateInit(ZStream* stream, int level, int windowBits, int memLevel) =>
        deflateInit2_(stream, level, Deflated, windowBits, memLevel, DefaultStrategy, Version, sizeof(ZStream));

    public static int InflateInit(ZStream* stream, int windowBits) =>
        inflateInit2_(stream, windowBits, Version, sizeof(ZStream));

    [LibraryImport(Library)]
    private static partial int deflateInit2_(ZStream* stream, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);

    [LibraryImport(Library)]
    public static partial int deflate(ZStream* stream, int flush);

    [LibraryImport(Library)]
    public static partial int deflateReset(ZStream* stream);

    [LibraryImport(Library)]
    public static partial int deflateEnd(ZStream* stream);

    [LibraryImport(Library)]
    private static partial int inflateInit2_(ZStream* stream, int windowBits, byte* version, int streamSize);

    [LibraryImport(Library)]
    public static partial int inflate(ZStream* stream, int flush);

    [LibraryImport(Library)]
    public static partial int inflateReset(ZStream* stream);

    [LibraryImport(Library)]
    public static partial int inflateEnd(ZStream* stream);

    /// <summary>True when zlib could be loaded on this machine (checked on first use, after the resolver is set).</summary>
    public static bool IsAvailable => Available.Value;

    private static readonly Lazy<bool> Available = new(Probe);

    private static bool Probe()
    {
        try
        {
            var stream = (ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZStream));
            try
            {
                if (InflateInit(stream, -15) != Ok)
                    return false;
                inflateEnd(stream);
                return true;
            }
            finally
            {
                NativeMemory.Free(stream);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }

}
