package io.xpuflow.cli;

import picocli.CommandLine;

/** Token ids given as {@code --prompt-ids 1,2,3}. */
record PromptIds(int[] ids) {

    /** picocli converter: comma-separated non-negative integers. */
    static final class Converter implements CommandLine.ITypeConverter<PromptIds> {
        @Override
        public PromptIds convert(String value) {
            return new PromptIds(parse(value));
        }
    }

    static int[] parse(String value) {
        String[] parts = value.split(",", -1);
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim();
            try {
                ids[i] = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("token id '" + p + "' at index " + i + " is not an integer");
            }
            if (ids[i] < 0) {
                throw new CommandLine.TypeConversionException("token id " + ids[i] + " at index " + i + " is negative");
            }
        }
        return ids;
    }
}
