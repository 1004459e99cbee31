<?xml version="1.0" encoding="UTF-8"?>
<!-- Case Exchange standard v1 -> police AJXX (and DefectNotice -> THTZ notice of return). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="c m">
  <xsl:output method="xml" encoding="GB18030"/>
  <xsl:template name="date"><xsl:param name="d"/><xsl:value-of select="translate($d,'-','')"/></xsl:template>
  <xsl:template match="c:Warning|c:Defect" mode="ts">
    <GZBH><xsl:value-of select="c:Rule"/></GZBH><JB><xsl:value-of select="c:Severity"/></JB>
    <SM><xsl:value-of select="c:MessageZh"/></SM><SMEN><xsl:value-of select="c:MessageEn"/></SMEN>
    <xsl:if test="c:Location"><WZ><xsl:value-of select="c:Location"/></WZ></xsl:if>
    <xsl:if test="c:Line"><HH><xsl:value-of select="c:Line"/></HH></xsl:if>
  </xsl:template>
  <xsl:template match="/c:CaseRecord">
    <AJXX BBH="1">
      <TYAJBH><xsl:value-of select="c:CaseNumber"/></TYAJBH>
      <JD><xsl:value-of select="m:to-legacy('stages', c:Stage)"/></JD>
      <YWLX><xsl:value-of select="m:to-legacy('actions', c:Action)"/></YWLX>
      <FSDW><xsl:value-of select="c:Sender"/></FSDW>
      <xsl:for-each select="c:Receiver"><JSDW><xsl:value-of select="."/></JSDW></xsl:for-each>
      <xsl:for-each select="c:LocalNumbers/c:LocalNumber"><AJBH DW="{@agency}"><xsl:value-of select="."/></AJBH></xsl:for-each>
      <xsl:for-each select="c:Persons/c:Person">
        <RY><RYBH><xsl:value-of select="@id"/></RYBH><RYJS><xsl:value-of select="m:to-legacy('roles', c:Role)"/></RYJS>
          <XM><xsl:value-of select="c:Name"/></XM>
          <xsl:if test="c:ResidentId"><SFZH><xsl:value-of select="c:ResidentId"/></SFZH></xsl:if>
          <xsl:if test="c:BirthDate"><CSRQ><xsl:call-template name="date"><xsl:with-param name="d" select="c:BirthDate"/></xsl:call-template></CSRQ></xsl:if>
          <xsl:if test="c:Gender"><XB><xsl:value-of select="m:to-legacy('genders', c:Gender)"/></XB></xsl:if>
          <xsl:if test="c:Address"><ZZ><xsl:value-of select="c:Address"/></ZZ></xsl:if></RY>
      </xsl:for-each>
      <xsl:for-each select="c:Offences/c:Offence">
        <ZM><ZMDM><xsl:value-of select="m:to-legacy('offences', c:Code)"/></ZMDM>
          <xsl:if test="c:PersonRef"><RYBH><xsl:value-of select="c:PersonRef"/></RYBH></xsl:if>
          <xsl:if test="c:Description"><ZMMS><xsl:value-of select="c:Description"/></ZMMS></xsl:if></ZM>
      </xsl:for-each>
      <xsl:for-each select="c:Events/c:Event">
        <SJ><SJLX><xsl:value-of select="m:to-legacy('events', c:Type)"/></SJLX>
          <SJRQ><xsl:call-template name="date"><xsl:with-param name="d" select="c:Date"/></xsl:call-template></SJRQ>
          <xsl:if test="c:PersonRef"><RYBH><xsl:value-of select="c:PersonRef"/></RYBH></xsl:if>
          <xsl:if test="c:Note"><BZ><xsl:value-of select="c:Note"/></BZ></xsl:if></SJ>
      </xsl:for-each>
      <xsl:for-each select="c:Documents/c:Document">
        <WS><WSLX><xsl:value-of select="m:to-legacy('doctypes', c:Type)"/></WSLX><WSBH><xsl:value-of select="c:Number"/></WSBH>
          <WSRQ><xsl:call-template name="date"><xsl:with-param name="d" select="c:Date"/></xsl:call-template></WSRQ>
          <ZZDW><xsl:value-of select="c:Issuer"/></ZZDW>
          <xsl:if test="c:Title"><WSMC><xsl:value-of select="c:Title"/></WSMC></xsl:if>
          <xsl:if test="c:FileRef"><WJBH><xsl:value-of select="c:FileRef"/></WJBH></xsl:if>
          <xsl:if test="c:Signature"><QZ SF="{c:Signature/@algorithm}" MY="{c:Signature/@keyId}"><xsl:value-of select="c:Signature"/></QZ></xsl:if></WS>
      </xsl:for-each>
      <xsl:for-each select="c:Evidence/c:Item">
        <ZJ><ZJZL><xsl:value-of select="m:to-legacy('evidence', c:Kind)"/></ZJZL>
          <xsl:if test="c:Description"><ZJMS><xsl:value-of select="c:Description"/></ZJMS></xsl:if>
          <xsl:if test="c:Value"><SZ DW="{c:Value/@unit}"><xsl:value-of select="c:Value"/></SZ></xsl:if>
          <xsl:if test="c:FileRef"><WJBH><xsl:value-of select="c:FileRef"/></WJBH></xsl:if></ZJ>
      </xsl:for-each>
      <xsl:for-each select="c:Dossier/c:File">
        <WJ><WJBH><xsl:value-of select="@id"/></WJBH><WJM><xsl:value-of select="c:Name"/></WJM><WJLX><xsl:value-of select="c:MediaType"/></WJLX>
          <WJDX><xsl:value-of select="c:Size"/></WJDX><HASH><xsl:value-of select="c:SHA256"/></HASH></WJ>
      </xsl:for-each>
      <xsl:for-each select="c:Warnings/c:Warning"><TS><xsl:apply-templates select="." mode="ts"/></TS></xsl:for-each>
    </AJXX>
  </xsl:template>
  <xsl:template match="/c:DefectNotice">
    <THTZ>
      <YXXBH><xsl:value-of select="c:OriginalMessageId"/></YXXBH>
      <xsl:if test="c:SenderMessageId"><FSXXBH><xsl:value-of select="c:SenderMessageId"/></FSXXBH></xsl:if>
      <xsl:if test="c:CaseNumber"><TYAJBH><xsl:value-of select="c:CaseNumber"/></TYAJBH></xsl:if>
      <JSDW><xsl:value-of select="c:Receiver"/></JSDW>
      <THSJ><xsl:value-of select="c:IssuedAt"/></THSJ>
      <xsl:for-each select="c:Defect"><WT><xsl:apply-templates select="." mode="ts"/></WT></xsl:for-each>
    </THTZ>
  </xsl:template>
</xsl:stylesheet>
